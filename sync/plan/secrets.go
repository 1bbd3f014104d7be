package plan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ferry-wasm/ferry/targets"
)

// desiredSecretHashes returns, by app name, the keyed hashes of each
// desired app's secret values as target t computes them (nil when t does
// not implement targets.SecretHasher: then secrets are not compared).
func desiredSecretHashes(t targets.Target, apps []targets.DesiredApp) map[string]map[string]string {
	h, ok := t.(targets.SecretHasher)
	if !ok {
		return nil
	}
	out := make(map[string]map[string]string, len(apps))
	for _, a := range apps {
		if a.Name != "" {
			out[a.Name] = h.SecretHashes(a.Name, a.Secrets)
		}
	}
	return out
}

// secretChanges compares the secret hashes a target reports for an app
// (observed; nil when it reports none) with those of the desired values
// (want; nil when the target cannot hash) and returns one reason per
// differing variable, sorted, naming variables only: "secret api_key
// changed", "secret x added", "secret y is no longer given (the target has
// a value)". Nil when either side is nil or nothing differs.
func secretChanges(observed, want map[string]string) []string {
	if observed == nil || want == nil {
		return nil
	}
	names := slices.Sorted(maps.Keys(want))
	for n := range observed {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		o, inO := observed[n]
		w, inW := want[n]
		switch {
		case !inO:
			out = append(out, fmt.Sprintf("secret %s added (value not shown)", n))
		case !inW:
			out = append(out, fmt.Sprintf("secret %s is no longer given (the target has a value)", n))
		case o != w:
			out = append(out, fmt.Sprintf("secret %s changed (value not shown)", n))
		}
	}
	return out
}
