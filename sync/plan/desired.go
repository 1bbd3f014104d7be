package plan

import (
	"fmt"
	"maps"
	"strings"

	"github.com/ferry-wasm/ferry/targets"
)

// Desired is what should run everywhere, as of one commit: the spec's
// targets, each with the apps it should run, pinned to built, pushed and
// signed artifact digests. The caller (the CLI or the agent) builds it from
// the spec and the pipeline's results; sync does not read specs.
//
// A target listed with no apps means "run no managed apps there": its
// managed apps are planned for deletion (this is how destroy is expressed).
// A target that is not listed at all is not planned and never touched.
type Desired struct {
	// Commit is the spec repository's commit the state was built from; it
	// is recorded in the plan. May be empty (e.g. an uncommitted work tree).
	Commit string `json:"commit"`
	// Targets are the targets to plan, in any order; names are unique.
	Targets []DesiredTarget `json:"targets"`
}

// DesiredTarget is the desired state of one target.
type DesiredTarget struct {
	// Name is the target's name from the spec; it selects the
	// targets.Target passed to Compute and Apply.
	Name string `json:"name"`
	// Type is the target's kind ("host", "kubernetes", "fleet"); recorded
	// in the plan for display.
	Type string `json:"type"`
	// Apps are the apps the target should run, in any order; names are
	// unique. Secrets in them are used only by SecretsFrom: a plan never
	// holds them.
	Apps []targets.DesiredApp `json:"apps"`
	// Keep names apps that are left exactly as they run: neither updated
	// nor deleted, whatever their state (e.g. an app whose release failed
	// this round, so that the plan does not prune it). A name in both Apps
	// and Keep is planned from Apps. Each kept app gets a note in the plan.
	Keep []string `json:"keep,omitempty"`
}

// SecretsFrom returns a function for ApplyOptions.SecretsFor that hands out
// copies of the secret values held in d. Use it when planning and applying
// in one process; when applying a saved plan, load the secrets again.
// The returned function is safe for concurrent use.
func SecretsFrom(d Desired) func(target, app string) map[string]string {
	m := map[string]map[string]map[string]string{}
	for _, t := range d.Targets {
		for _, a := range t.Apps {
			if len(a.Secrets) == 0 {
				continue
			}
			if m[t.Name] == nil {
				m[t.Name] = map[string]map[string]string{}
			}
			m[t.Name][a.Name] = maps.Clone(a.Secrets)
		}
	}
	return func(target, app string) map[string]string {
		return maps.Clone(m[target][app])
	}
}

// validDigest reports whether s looks like "sha256:<64 hex>" or
// "sha512:<128 hex>".
func validDigest(s string) bool {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch algo {
	case "sha256":
		if len(hex) != 64 {
			return false
		}
	case "sha512":
		if len(hex) != 128 {
			return false
		}
	default:
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkDesiredApp returns error diagnostics for a malformed desired app.
// Messages never include variable values.
func checkDesiredApp(target string, a targets.DesiredApp) Diagnostics {
	var ds Diagnostics
	if a.Name == "" {
		return Diagnostics{errorDiag(target, "", "Desired app has no name", "")}
	}
	if !validDigest(a.Digest) {
		ds = append(ds, errorDiag(target, a.Name, "Invalid artifact digest",
			"The desired digest %q is not of the form sha256:<64 hex digits>; build and push the app before planning.", a.Digest))
	}
	if a.Ref != "" && !strings.HasSuffix(a.Ref, "@"+a.Digest) {
		ds = append(ds, errorDiag(target, a.Name, "Reference does not match digest",
			"The artifact reference %q must end with \"@%s\".", a.Ref, a.Digest))
	}
	if a.App.Name != "" && a.App.Name != a.Name {
		ds = append(ds, errorDiag(target, a.Name, "App name mismatch",
			"The app's configuration is named %q but it is deployed as %q.", a.App.Name, a.Name))
	}
	for vn, v := range a.App.Variables {
		if v.Secret && v.Default != nil {
			ds = append(ds, errorDiag(target, a.Name, "Secret variable carries a value",
				"Variable %q is secret but its configuration holds a value; secret values must come through the target's secret channel and never sit in an artifact or a plan.", vn))
		}
	}
	for i, c := range a.App.Components {
		if c.Digest != "" && !validDigest(c.Digest) {
			ds = append(ds, errorDiag(target, a.Name, "Invalid component digest",
				"Component %d (%q) has digest %q, which is not of the form sha256:<64 hex digits>.", i, c.Name, c.Digest))
		}
	}
	return ds
}

// StripSecrets returns a copy of a holding no secret values: Secrets is nil
// and secret variables carry no default.
func StripSecrets(a targets.DesiredApp) targets.DesiredApp {
	a.Secrets = nil
	if len(a.App.Variables) > 0 {
		vars := maps.Clone(a.App.Variables)
		for k, v := range vars {
			if v.Secret && v.Default != nil {
				v.Default = nil
				vars[k] = v
			}
		}
		a.App.Variables = vars
	}
	return a
}

// ShortDigest shortens a digest for messages: "sha256:0123456789ab…";
// "(none)" for an empty one.
func ShortDigest(d string) string {
	if d == "" {
		return "(none)"
	}
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return fmt.Sprintf("%s:%s…", algo, hex[:12])
}
