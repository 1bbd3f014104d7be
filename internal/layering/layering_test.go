package layering

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

const module = "github.com/ferry-wasm/ferry/"

// A rule says what the packages matching From may reach through imports.
// Patterns are import paths, with module-relative paths for ferry's own
// packages ("sync/plan") and "/..." for a package and everything under it.
type rule struct {
	From []string
	// Only, when set, lists every ferry package From may reach (itself and
	// its own sub-packages aside); anything else of ferry is a violation.
	Only []string
	// Never lists packages (ferry's or third-party) From must not reach.
	Never []string
	Why   string
}

// importRule says who may import a package directly.
type importRule struct {
	Pkg []string
	By  []string
	Why string
}

var hostSide = []string{"targets/host", "targets/host/abi", "targets/host/api", "targets/host/core", "targets/host/control", "targets/host/single", "targets/host/state"}

var rules = []rule{
	{From: []string{"sync/plan"}, Only: []string{"targets", "deploy/...", "internal/parallel"},
		Why: "the plan is a value computed from desired state and what targets report: it reaches no driver, release or agent"},
	{From: []string{"sync/plan/plantest"}, Only: []string{"targets", "deploy/..."},
		Why: "the in-memory target is a target, nothing more"},
	{From: []string{"sync/release"}, Never: []string{"sync/agent/...", "targets/host", "targets/host/core", "targets/host/control", "targets/host/driver", "targets/host/state", "targets/kubernetes/...", "targets/fleet/...", "targets/open"},
		Why: "the release step (spec → built, pushed, signed desired state) knows no agent and no driver"},
	{From: []string{"targets"}, Only: []string{"deploy/..."},
		Why: "the target contract is a leaf: drivers import it, it imports none of them"},
	{From: hostSide, Never: []string{"sync/...", "spec", "builder", "targets/open", "targets/kubernetes/...", "github.com/hashicorp/hcl/...", "k8s.io/...", "sigs.k8s.io/...", "github.com/go-git/..."},
		Why: "the host runtime, core and control server run on small devices: no agent, release, spec, HCL, git or client-go"},
	{From: []string{"targets/host/driver"}, Never: []string{"targets/host", "targets/host/core", "targets/host/control", "targets/host/state", "github.com/tetratelabs/wazero/..."},
		Why: "the host driver talks to a host over its API; it does not embed one"},
	{From: []string{"cmd/ferry-host"}, Never: []string{"k8s.io/...", "sigs.k8s.io/...", "github.com/hashicorp/hcl/...", "github.com/go-git/...", "sync/...", "spec", "builder"},
		Why: "ferry-host stays lean and cross-compiles to arm64/armv7: no client-go, HCL, go-git or agent"},
	{From: []string{"targets/fleet/device"}, Only: []string{"targets/fleet/api", "targets/host", "targets/host/abi", "targets/host/api", "targets/host/core", "targets/host/state", "registry/...", "signer", "deploy/...", "internal/wasmbin"},
		Never: []string{"k8s.io/...", "sigs.k8s.io/...", "github.com/hashicorp/hcl/...", "github.com/go-git/..."},
		Why:   "device mode is part of the lean ferry-host: the protocol, the host core, registry and signer; no rollout engine, agent, client-go, HCL or go-git"},
	{From: []string{"internal/devicetest"}, Only: []string{"targets/fleet/api"},
		Why: "the test device server speaks the protocol and nothing more"},
	{From: []string{"targets/fleet/server"}, Only: []string{"targets/fleet/api"},
		Why: "the device API server knows the wire types, not the engine, the spec or any driver"},
	{From: []string{"targets/fleet/hub"}, Only: []string{"targets", "targets/fleet", "targets/fleet/api", "targets/fleet/server", "targets/fleet/controller", "spec", "deploy/...", "internal/httproute"},
		Why: "the agent's fleet side (device server, controllers, admin API) reaches no agent, other driver or client-go"},
	{From: []string{"targets/fleet/controller"}, Only: []string{"targets", "targets/fleet", "targets/fleet/api", "targets/fleet/server", "spec", "deploy/..."},
		Why: "the fleet controller joins the engine and the device API behind the target contract; it reaches no agent or other driver"},
	{From: []string{"spec"}, Only: []string{"deploy/..."},
		Why: "loading a spec is pure: it reads files and builds, pushes or contacts nothing"},
	{From: []string{"deploy/..."}, Only: []string{},
		Why: "the shared value types are a leaf so that nothing cycles"},
	{From: []string{"builder"}, Never: []string{"registry/...", "signer", "sync/...", "targets", "targets/host", "targets/host/core", "targets/host/control", "targets/host/driver"},
		Why: "building a component is one job; pushing and signing are others"},
	{From: []string{"builder/hostimage"}, Never: []string{"sync/...", "targets/...", "spec", "signer", "github.com/hashicorp/hcl/...", "k8s.io/...", "sigs.k8s.io/..."},
		Why: "building the ferry-host image is one job (go build + go-containerregistry); signing it is the signer's, deploying it the targets'"},
	{From: []string{"registry/..."}, Never: []string{"signer", "sync/...", "targets/...", "spec", "builder"},
		Why: "the OCI layout and transport know nothing of signatures, plans or targets"},
	{From: []string{"signer"}, Never: []string{"sync/...", "targets/...", "spec", "builder", "oras.land/..."},
		Why: "signing and verification share only the registry credential with the registry client"},
	{From: []string{"targets/kubernetes/render"}, Only: []string{"targets", "deploy/..."},
		Why: "rendering an app's Kubernetes objects is pure: it reaches no cluster helper, spec or driver"},
	{From: []string{"targets/kubernetes/driver"}, Only: []string{"targets", "deploy/...", "targets/kubernetes/render", "targets/host/api"},
		Why: "the Kubernetes driver is opened from options, not from the spec (targets/open maps one to the other)"},
	{From: []string{"targets/kubernetes/statestore"}, Only: []string{"targets/kubernetes/kubeconfig"},
		Why: "the in-cluster state store keeps opaque bytes in a ConfigMap: it knows no agent, history or driver"},
	{From: []string{"sync/notify"}, Only: []string{},
		Never: []string{"k8s.io/...", "sigs.k8s.io/...", "github.com/hashicorp/hcl/...", "github.com/go-git/..."},
		Why:   "notifications are a leaf: events are plain values, the agent and cmd/ferry describe what happened"},
	{From: []string{"sync/agent/dashboard"}, Never: []string{"targets/open", "targets/kubernetes/...", "targets/host", "targets/host/core", "targets/host/control", "targets/host/driver", "k8s.io/...", "sigs.k8s.io/...", "github.com/chromedp/..."},
		Why: "the dashboard reads the agent and the fleet hub through small interfaces; it opens no target and drives no browser (only its tests do)"},
	{From: []string{"sdk/..."}, Only: []string{"targets/host/abi"},
		Why: "the guest SDK builds for wasip1 and shares only the ABI's constants with the host"},
}

var importRules = []importRule{
	{Pkg: []string{"sync/agent/..."}, By: []string{"cmd/ferry", "sync/agent/..."},
		Why: "the agent uses the others; nothing imports the agent"},
	{Pkg: []string{"sync/agent/dashboard"}, By: []string{"cmd/ferry"},
		Why: "the dashboard is mounted by cmd/ferry beside the status API; the agent does not know it"},
	{Pkg: []string{"github.com/chromedp/..."}, By: []string{"internal/browsertest", "github.com/chromedp/..."},
		Why: "the browser is driven from tests only, through internal/browsertest"},
	{Pkg: []string{"github.com/tetratelabs/wazero/..."}, By: []string{"targets/host", "builder", "github.com/tetratelabs/wazero/..."},
		Why: "wazero stays inside the host runtime (and the builder's module check)"},
	{Pkg: []string{"k8s.io/client-go/..."}, By: []string{"targets/kubernetes/...", "internal/kubetest", "k8s.io/...", "sigs.k8s.io/..."},
		Why: "client-go stays inside the Kubernetes driver (and the test cluster)"},
}

// full turns a pattern into an import path: ferry's own are module-relative.
func full(p string) string {
	first, _, _ := strings.Cut(p, "/")
	if strings.Contains(first, ".") {
		return p
	}
	return module + p
}

func match(pattern, pkg string) bool {
	pattern = full(pattern)
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if match(p, pkg) {
			return true
		}
	}
	return false
}

func short(pkg string) string { return strings.TrimPrefix(pkg, module) }

func chain(g Graph, from, to string) string {
	p := g.Path(from, to)
	for i := range p {
		p[i] = short(p[i])
	}
	return strings.Join(p, " → ")
}

// violations checks every rule against g and returns one line per broken
// rule and package. matched reports which rules applied to some package,
// so that a rule naming a package that no longer exists is noticed.
func violations(g Graph, rules []rule, importRules []importRule) (out []string, unmatched []string) {
	for i, r := range rules {
		n := 0
		for pkg := range g {
			if !matchAny(r.From, pkg) {
				continue
			}
			n++
			for _, dep := range g.Reach(pkg) {
				switch {
				case matchAny(r.Never, dep):
				case r.Only != nil && strings.HasPrefix(dep, module) && !matchAny(r.From, dep) && !strings.HasPrefix(dep, pkg+"/") && !matchAny(r.Only, dep):
				default:
					continue
				}
				out = append(out, fmt.Sprintf("%s reaches %s (%s): %s", short(pkg), short(dep), chain(g, pkg, dep), r.Why))
			}
		}
		if n == 0 {
			unmatched = append(unmatched, fmt.Sprintf("rule %d (%s) matches no package", i, strings.Join(r.From, ", ")))
		}
	}
	for _, r := range importRules {
		for pkg := range g {
			if !matchAny(r.Pkg, pkg) {
				continue
			}
			for _, by := range g.Importers(pkg) {
				if !matchAny(r.By, by) {
					out = append(out, fmt.Sprintf("%s imports %s: %s", short(by), short(pkg), r.Why))
				}
			}
		}
	}
	return out, unmatched
}

// TestImportRules checks the rules on the module's real import graph.
func TestImportRules(t *testing.T) {
	g, err := Load(testenv.RepoRoot(t), "./...")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g[module+"sync/plan"]; !ok {
		t.Fatalf("go list returned no sync/plan (%d packages): the graph is not the module's", len(g))
	}
	bad, unmatched := violations(g, rules, importRules)
	for _, u := range unmatched {
		t.Error(u)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestRulesCatchViolations proves the checker fails on graphs that break
// each kind of rule, so that a passing TestImportRules means something.
func TestRulesCatchViolations(t *testing.T) {
	m := func(p string) string { return module + p }
	base := Graph{
		m("sync/plan"):                  {m("targets"), "fmt"},
		m("targets"):                    {m("deploy")},
		m("deploy"):                     nil,
		m("sync/agent"):                 {m("sync/plan")},
		m("cmd/ferry"):                  {m("sync/agent")},
		m("cmd/ferry-host"):             {m("targets/host")},
		m("targets/host"):               {"github.com/tetratelabs/wazero"},
		"github.com/tetratelabs/wazero": nil,
		"fmt":                           nil,
	}
	if bad, _ := violations(base, rules, importRules); len(bad) != 0 {
		t.Fatalf("clean graph: %v", bad)
	}
	cases := []struct {
		name string
		edit func(g Graph)
		want string
	}{
		{"plan reaches a driver indirectly", func(g Graph) {
			g[m("targets")] = append(g[m("targets")], m("targets/host/driver"))
			g[m("targets/host/driver")] = nil
		}, "sync/plan reaches targets/host/driver (sync/plan → targets → targets/host/driver)"},
		{"host runtime reaches HCL", func(g Graph) {
			g[m("targets/host")] = append(g[m("targets/host")], "github.com/hashicorp/hcl/v2")
			g["github.com/hashicorp/hcl/v2"] = nil
		}, "targets/host reaches github.com/hashicorp/hcl/v2"},
		{"ferry-host links client-go", func(g Graph) {
			g[m("cmd/ferry-host")] = append(g[m("cmd/ferry-host")], "k8s.io/client-go/rest")
			g["k8s.io/client-go/rest"] = nil
		}, "cmd/ferry-host reaches k8s.io/client-go/rest"},
		{"something imports the agent", func(g Graph) {
			g[m("targets/host")] = append(g[m("targets/host")], m("sync/agent"))
		}, "targets/host imports sync/agent"},
		{"wazero outside the runtime", func(g Graph) {
			g[m("sync/agent")] = append(g[m("sync/agent")], "github.com/tetratelabs/wazero")
		}, "sync/agent imports github.com/tetratelabs/wazero"},
	}
	for _, c := range cases {
		g := Graph{}
		for k, v := range base {
			g[k] = append([]string(nil), v...)
		}
		c.edit(g)
		bad, _ := violations(g, rules, importRules)
		if !strings.Contains(strings.Join(bad, "\n"), c.want) {
			t.Errorf("%s: violations %q, want one containing %q", c.name, bad, c.want)
		}
	}
}
