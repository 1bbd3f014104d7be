package plan

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/google/go-cmp/cmp"
)

// brief is the comparable summary of a change.
type brief struct {
	App     string
	Action  Action
	Reasons []string
}

func briefs(tp *TargetPlan) []brief {
	var out []brief
	for _, c := range tp.Changes {
		out = append(out, brief{c.App, c.Action, c.Reasons})
	}
	return out
}

func diagSummaries(ds Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d.Severity)+": "+d.App+": "+d.Summary)
	}
	return out
}

func TestComputePlan(t *testing.T) {
	type obs struct {
		name, label      string
		managed, healthy bool
	}
	tests := []struct {
		name      string
		observed  []obs
		rollbackD map[string]string // app → label of its previous version (set via a real Put sequence)
		desired   []targets.DesiredApp
		keep      []string
		opts      PlanOptions
		want      []brief
		diags     []string
		errored   bool
	}{
		{
			name:    "create on empty target",
			desired: []targets.DesiredApp{plantest.App("hello", "v1")},
			want:    []brief{{"hello", ActionCreate, []string{"not on the target"}}},
		},
		{
			name:     "no-op when same digest and healthy",
			observed: []obs{{"hello", "v1", true, true}},
			desired:  []targets.DesiredApp{plantest.App("hello", "v1")},
			want:     []brief{{"hello", ActionNoop, nil}},
		},
		{
			name:     "update on new digest",
			observed: []obs{{"hello", "v1", true, true}},
			desired:  []targets.DesiredApp{plantest.App("hello", "v2")},
			want:     []brief{{"hello", ActionUpdate, []string{"new digest " + ShortDigest(plantest.Dg("v1")) + " → " + ShortDigest(plantest.Dg("v2"))}}},
		},
		{
			name:     "drift: same digest but unhealthy is redeployed",
			observed: []obs{{"hello", "v1", true, false}},
			desired:  []targets.DesiredApp{plantest.App("hello", "v1")},
			want:     []brief{{"hello", ActionUpdate, []string{"drift: unhealthy (status failed); redeploying " + ShortDigest(plantest.Dg("v1"))}}},
		},
		{
			name:     "delete managed app removed from spec; unmanaged left alone",
			observed: []obs{{"old", "v1", true, true}, {"legacy", "v9", false, true}},
			desired:  nil,
			want:     []brief{{"old", ActionDelete, []string{"removed from the spec"}}},
			diags:    []string{"note: legacy: Unmanaged app left alone"},
		},
		{
			name:     "desired name clashes with an unmanaged app",
			observed: []obs{{"hello", "v1", false, true}},
			desired:  []targets.DesiredApp{plantest.App("hello", "v2")},
			want:     nil,
			diags:    []string{"error: hello: App exists but is not managed by ferry"},
			errored:  true,
		},
		{
			name:     "adopting an unmanaged app when allowed",
			observed: []obs{{"hello", "v1", false, true}},
			desired:  []targets.DesiredApp{plantest.App("hello", "v1")},
			opts:     PlanOptions{AdoptUnmanaged: true},
			want:     []brief{{"hello", ActionUpdate, []string{"adopting an app ferry did not deploy (same digest)"}}},
		},
		{
			name:    "invalid digest makes the target errored",
			desired: []targets.DesiredApp{{Name: "bad", Digest: "sha256:xyz"}},
			want:    []brief{{"bad", ActionCreate, []string{"not on the target"}}},
			diags:   []string{"error: bad: Invalid artifact digest"},
			errored: true,
		},
		{
			name:     "kept apps are neither updated nor deleted",
			observed: []obs{{"broken", "v1", true, false}, {"gone", "v1", true, true}},
			desired:  []targets.DesiredApp{plantest.App("both", "v1")},
			keep:     []string{"broken", "both", "never"},
			want:     []brief{{"both", ActionCreate, []string{"not on the target"}}, {"gone", ActionDelete, []string{"removed from the spec"}}},
			diags:    []string{"note: broken: App kept as it runs", "note: never: App kept as it runs"},
		},
		{
			name:    "nameless desired app",
			desired: []targets.DesiredApp{{Digest: plantest.Dg("v1")}},
			want:    nil,
			diags:   []string{"error: : Desired app has no name"},
			errored: true,
		},
		{
			name:    "duplicate desired app",
			desired: []targets.DesiredApp{plantest.App("a", "v1"), plantest.App("a", "v2")},
			want:    []brief{{"a", ActionCreate, []string{"not on the target"}}},
			diags:   []string{"error: a: Duplicate app"},
			errored: true,
		},
		{
			name:    "ref that does not end in the digest",
			desired: []targets.DesiredApp{{Name: "a", Digest: plantest.Dg("v1"), Ref: "reg.test/a@" + plantest.Dg("v2")}},
			want:    []brief{{"a", ActionCreate, []string{"not on the target"}}},
			diags:   []string{"error: a: Reference does not match digest"},
			errored: true,
		},
		{
			name:     "many apps sorted",
			observed: []obs{{"c", "v1", true, true}, {"a", "v1", true, true}, {"z", "v1", true, true}},
			desired:  []targets.DesiredApp{plantest.App("b", "v1"), plantest.App("c", "v2"), plantest.App("a", "v1")},
			want: []brief{
				{"a", ActionNoop, nil},
				{"b", ActionCreate, []string{"not on the target"}},
				{"c", ActionUpdate, []string{"new digest " + ShortDigest(plantest.Dg("v1")) + " → " + ShortDigest(plantest.Dg("v2"))}},
				{"z", ActionDelete, []string{"removed from the spec"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := plantest.NewMem()
			for _, o := range tc.observed {
				m.Set(o.name, plantest.Dg(o.label), o.managed, o.healthy)
			}
			d := Desired{Commit: "abc123", Targets: []DesiredTarget{{Name: "local", Type: "host", Apps: tc.desired, Keep: tc.keep}}}
			p, err := Compute(context.Background(), d, plantest.Tmap("local", m), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tp := p.Target("local")
			if tp == nil {
				t.Fatal("no plan for target local")
			}
			if diff := cmp.Diff(tc.want, briefs(tp)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.diags, diagSummaries(tp.Diagnostics)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if tp.Errored != tc.errored {
				t.Errorf("Errored = %v, want %v", tp.Errored, tc.errored)
			}
			if gotErr := p.Applyable() != nil; gotErr != tc.errored {
				t.Errorf("Applyable() = %v, want error %v", p.Applyable(), tc.errored)
			}
			if tc.errored && !errors.Is(p.Applyable(), ErrPlanErrored) {
				t.Errorf("Applyable() = %v, want ErrPlanErrored", p.Applyable())
			}
			if p.Commit != "abc123" || p.FormatVersion != FormatVersion || tp.Type != "host" {
				t.Errorf("plan header = %q v%d type %q", p.Commit, p.FormatVersion, tp.Type)
			}
		})
	}
}

func TestComputePlanDriftRolledBack(t *testing.T) {
	m := plantest.NewMem()
	ctx := context.Background()
	for _, l := range []string{"v1", "v2"} {
		if _, err := m.Put(ctx, plantest.App("hello", l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RollBack(ctx, "hello"); err != nil { // someone rolled back by hand
		t.Fatal(err)
	}
	d := Desired{Targets: []DesiredTarget{{Name: "local", Apps: []targets.DesiredApp{plantest.App("hello", "v2")}}}}
	p, err := Compute(ctx, d, plantest.Tmap("local", m), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{{"hello", ActionUpdate, []string{
		"new digest " + ShortDigest(plantest.Dg("v1")) + " → " + ShortDigest(plantest.Dg("v2")),
		"drift: the target runs its previous version; the desired version was rolled back or replaced by hand",
	}}}
	if diff := cmp.Diff(want, briefs(p.Target("local"))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestComputePlanConfigChanges(t *testing.T) {
	m := plantest.NewMem()
	m.Set("api", plantest.Dg("v1"), true, true)
	oldCfg := deploy.App{Name: "api", Hosts: []string{"a.test"}, Components: []deploy.Component{{Name: "web", Digest: plantest.Dg("w1"), Routes: []string{"/"}}}}
	newApp := plantest.App("api", "v2")
	newApp.App = deploy.App{Name: "api", Hosts: []string{"a.test", "b.test"}, Components: []deploy.Component{{Name: "web", Digest: plantest.Dg("w2"), Routes: []string{"/"}, Env: map[string]string{"LOG": "debug"}}}}
	var gotRef string
	opts := PlanOptions{ConfigOf: func(ctx context.Context, target string, running targets.ObservedApp) (*deploy.App, error) {
		gotRef = running.Ref
		return &oldCfg, nil
	}}
	d := Desired{Targets: []DesiredTarget{{Name: "local", Apps: []targets.DesiredApp{newApp}}}}
	p, err := Compute(context.Background(), d, plantest.Tmap("local", m), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []brief{{"api", ActionUpdate, []string{
		"new digest " + ShortDigest(plantest.Dg("v1")) + " → " + ShortDigest(plantest.Dg("v2")),
		"config changed: hosts, components[web].wasm " + ShortDigest(plantest.Dg("w1")) + " → " + ShortDigest(plantest.Dg("w2")) + ", components[web].env[LOG]",
	}}}
	if diff := cmp.Diff(want, briefs(p.Target("local"))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if gotRef != "reg.test/api@"+plantest.Dg("v1") {
		t.Errorf("ConfigOf got ref %q", gotRef)
	}

	// A failing ConfigOf is a warning, not an error.
	opts.ConfigOf = func(context.Context, string, targets.ObservedApp) (*deploy.App, error) {
		return nil, errors.New("registry down")
	}
	p, err = Compute(context.Background(), d, plantest.Tmap("local", m), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Applyable(); err != nil {
		t.Errorf("Applyable() = %v, want nil", err)
	}
	if diff := cmp.Diff([]string{"warning: api: Cannot read running configuration"}, diagSummaries(p.Target("local").Diagnostics)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConfigChanges(t *testing.T) {
	s := func(v string) *string { return &v }
	base := func() deploy.App {
		return deploy.App{
			Name: "a", Hosts: []string{"h"},
			Variables:  map[string]deploy.Variable{"greeting": {Default: s("hi")}, "token": {Secret: true}},
			Components: []deploy.Component{{Name: "web", Digest: plantest.Dg("w"), Routes: []string{"/"}}, {Name: "api", Digest: plantest.Dg("a")}},
		}
	}
	tests := []struct {
		name   string
		change func(*deploy.App)
		want   []string
	}{
		{"identical", func(*deploy.App) {}, nil},
		{"nil and empty are equal", func(a *deploy.App) { a.KeyValueStores = []string{}; a.Components[0].Env = map[string]string{} }, nil},
		{"default executor is wagi", func(a *deploy.App) { a.Components[0].Executor = deploy.ExecutorWAGI }, nil},
		{"variable default changed", func(a *deploy.App) { a.Variables["greeting"] = deploy.Variable{Default: s("hello")} }, []string{"variables[greeting]"}},
		{"variable added", func(a *deploy.App) { a.Variables["x"] = deploy.Variable{} }, []string{"variables[x]"}},
		{"component removed", func(a *deploy.App) { a.Components = a.Components[:1] }, []string{"components[api] removed"}},
		{"component reordered", func(a *deploy.App) { a.Components[0], a.Components[1] = a.Components[1], a.Components[0] }, []string{"components order"}},
		{"limits and health", func(a *deploy.App) {
			a.Components[1].Limits.Timeout = deploy.Duration(time.Second)
			a.Components[1].Health = &deploy.Health{Path: "/h"}
		}, []string{"components[api].limits.timeout", "components[api].health"}},
		{"routes and outbound", func(a *deploy.App) {
			a.Components[0].Routes = []string{"/", "/x"}
			a.Components[0].AllowedOutboundHosts = []string{"https://x.test"}
		}, []string{"components[web].routes", "components[web].allowed_outbound_hosts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := base()
			n.Variables = map[string]deploy.Variable{"greeting": n.Variables["greeting"], "token": n.Variables["token"]}
			tc.change(&n)
			if diff := cmp.Diff(tc.want, ConfigChanges(base(), n)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputePlanTargets(t *testing.T) {
	up, down := plantest.NewMem(), plantest.NewMem()
	down.Unavailable = true
	d := Desired{Targets: []DesiredTarget{
		{Name: "up", Apps: []targets.DesiredApp{plantest.App("a", "v1")}},
		{Name: "down", Apps: []targets.DesiredApp{plantest.App("a", "v1")}},
		{Name: "unwired", Apps: []targets.DesiredApp{plantest.App("a", "v1")}},
	}}
	p, err := Compute(context.Background(), d, plantest.Tmap("up", up, "down", down), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range p.Targets {
		names = append(names, tp.Name)
	}
	if diff := cmp.Diff([]string{"down", "unwired", "up"}, names); diff != "" {
		t.Errorf("targets not sorted (-want +got):\n%s", diff)
	}
	if !p.Target("down").Errored || !p.Target("unwired").Errored || p.Target("up").Errored {
		t.Errorf("errored: down=%v unwired=%v up=%v", p.Target("down").Errored, p.Target("unwired").Errored, p.Target("up").Errored)
	}
	if d := p.Target("down").Diagnostics; len(d) != 1 || !strings.Contains(d[0].Detail, "transient") {
		t.Errorf("down diagnostics = %v", d)
	}
	if err := p.Applyable(); !errors.Is(err, ErrPlanErrored) {
		t.Errorf("Applyable() = %v, want ErrPlanErrored", err)
	}
	if _, err := Apply(context.Background(), p, plantest.Tmap("up", up, "down", down), ApplyOptions{}); !errors.Is(err, ErrPlanErrored) {
		t.Errorf("Apply(errored plan) = %v, want ErrPlanErrored", err)
	}
	if puts, _, _, _ := up.Counts(); puts != 0 {
		t.Errorf("errored plan applied %d puts", puts)
	}

	// -target selects one; an unknown name is an error.
	p, err = Compute(context.Background(), d, plantest.Tmap("up", up, "down", down), PlanOptions{Targets: []string{"up"}})
	if err != nil || len(p.Targets) != 1 || p.Applyable() != nil {
		t.Fatalf("-target up: %v, %d targets, %v", err, len(p.Targets), p.Applyable())
	}
	p, _ = Compute(context.Background(), d, plantest.Tmap("up", up), PlanOptions{Targets: []string{"nope"}})
	if !errors.Is(p.Applyable(), ErrPlanErrored) || len(p.Targets) != 0 {
		t.Errorf("unknown -target: %v, %d targets", p.Applyable(), len(p.Targets))
	}

	// Malformed desired state is an error.
	for _, bad := range []Desired{
		{Targets: []DesiredTarget{{Name: ""}}},
		{Targets: []DesiredTarget{{Name: "x"}, {Name: "x"}}},
	} {
		if _, err := Compute(context.Background(), bad, nil, PlanOptions{}); !errors.Is(err, ErrInvalidDesired) {
			t.Errorf("ComputePlan(%v) = %v, want ErrInvalidDesired", bad, err)
		}
	}
}

func TestPlanDeterministic(t *testing.T) {
	m := plantest.NewMem()
	for i := range 50 {
		m.Set(string(rune('a'+i%26))+string(rune('a'+i/26)), plantest.Dg("v1"), i%3 != 0, i%7 != 0)
	}
	d := Desired{Commit: "c", Targets: []DesiredTarget{{Name: "local", Apps: []targets.DesiredApp{plantest.App("aa", "v2"), plantest.App("new", "v1")}}}}
	fixed := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	var first []byte
	for range 5 { // memTarget.Observe returns map order: different each time
		p, err := Compute(context.Background(), d, plantest.Tmap("local", m), PlanOptions{Now: fixed})
		if err != nil {
			t.Fatal(err)
		}
		b, err := MarshalPlan(p)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if diff := cmp.Diff(string(first), string(b)); diff != "" {
			t.Fatalf("plans differ between runs (-first +now):\n%s", diff)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := targets.ObservedApp{Name: "a", Digest: plantest.Dg("1"), Managed: true, Healthy: true, Status: "serving"}
	b := targets.ObservedApp{Name: "b", Digest: plantest.Dg("2"), Managed: false, Healthy: true}
	base := Fingerprint([]targets.ObservedApp{a, b})
	if got := Fingerprint([]targets.ObservedApp{b, a}); got != base {
		t.Errorf("order changes fingerprint")
	}
	if !strings.HasPrefix(base, "sha256:") || len(base) != 71 {
		t.Errorf("fingerprint %q is not sha256:<64 hex>", base)
	}
	if Fingerprint(nil) != Fingerprint([]targets.ObservedApp{}) {
		t.Errorf("nil and empty differ")
	}
	same := []func(o *targets.ObservedApp){
		func(o *targets.ObservedApp) { o.Status = "starting" },
		func(o *targets.ObservedApp) { o.Message = "x" },
		func(o *targets.ObservedApp) { o.Previous = plantest.Dg("0") },
		func(o *targets.ObservedApp) { o.Ref = "r@" + o.Digest },
	}
	moved := []func(o *targets.ObservedApp){
		func(o *targets.ObservedApp) { o.Digest = plantest.Dg("3") },
		func(o *targets.ObservedApp) { o.Healthy = false },
		func(o *targets.ObservedApp) { o.Managed = false },
		func(o *targets.ObservedApp) { o.Name = "c" },
	}
	for i, f := range same {
		x := a
		f(&x)
		if Fingerprint([]targets.ObservedApp{x, b}) != base {
			t.Errorf("same[%d] changed the fingerprint", i)
		}
	}
	for i, f := range moved {
		x := a
		f(&x)
		if Fingerprint([]targets.ObservedApp{x, b}) == base {
			t.Errorf("moved[%d] did not change the fingerprint", i)
		}
	}
	// Names are length-delimited by the encoding: no ambiguity.
	if Fingerprint([]targets.ObservedApp{{Name: "a\n", Digest: "x"}}) == Fingerprint([]targets.ObservedApp{{Name: "a", Digest: "\nx"}}) {
		t.Errorf("encoding is ambiguous")
	}
}
