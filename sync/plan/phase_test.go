package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
)

// TestComputePlanPhases is Compute's rule for rollouts in progress: an app
// the target reports progressing towards exactly the desired digest is
// waited for; progressing towards another digest, degraded or failed is
// planned as before.
func TestComputePlanPhases(t *testing.T) {
	v1, v2 := plantest.Dg("v1"), plantest.Dg("v2")
	obs := func(digest string, healthy bool, status string, phase targets.Phase) targets.ObservedApp {
		return targets.ObservedApp{Name: "web", Ref: "reg.test/web@" + digest, Digest: digest, Managed: true,
			Healthy: healthy, Status: status, Phase: phase}
	}
	newDigest := "new digest " + ShortDigest(v1) + " → " + ShortDigest(v2)
	tests := []struct {
		name     string
		observed targets.ObservedApp
		want     brief
	}{
		{
			name:     "progressing towards the desired digest waits",
			observed: obs(v2, false, "progressing", targets.PhaseProgressing),
			want:     brief{"web", ActionWait, []string{"progressing towards " + ShortDigest(v2) + "; waiting for the target's rollout"}},
		},
		{
			name:     "progressing and already healthy still waits",
			observed: obs(v2, true, "progressing", targets.PhaseProgressing),
			want:     brief{"web", ActionWait, []string{"progressing towards " + ShortDigest(v2) + "; waiting for the target's rollout"}},
		},
		{
			name:     "progressing towards another digest is an update",
			observed: obs(v1, false, "progressing", targets.PhaseProgressing),
			want:     brief{"web", ActionUpdate, []string{newDigest}},
		},
		{
			name:     "failed at the desired digest is drift",
			observed: obs(v2, false, "failed", targets.PhaseFailed),
			want:     brief{"web", ActionUpdate, []string{"drift: unhealthy (status failed); redeploying " + ShortDigest(v2)}},
		},
		{
			name:     "degraded at the desired digest is drift",
			observed: obs(v2, false, "degraded", targets.PhaseDegraded),
			want:     brief{"web", ActionUpdate, []string{"drift: unhealthy (status degraded); redeploying " + ShortDigest(v2)}},
		},
		{
			name:     "ready at the desired digest is a no-op",
			observed: obs(v2, true, "serving", targets.PhaseReady),
			want:     brief{"web", ActionNoop, nil},
		},
		{
			name:     "no phase (an older host) and healthy is a no-op",
			observed: obs(v2, true, "serving", ""),
			want:     brief{"web", ActionNoop, nil},
		},
		{
			name:     "no phase (an older host) and failed is drift",
			observed: obs(v2, false, "failed", ""),
			want:     brief{"web", ActionUpdate, []string{"drift: unhealthy (status failed); redeploying " + ShortDigest(v2)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := ownerTarget{apps: []targets.ObservedApp{tc.observed}}
			p, err := Compute(context.Background(), desiredOne("local", plantest.App("web", "v2")), plantest.Tmap("local", tg), PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Applyable(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]brief{tc.want}, briefs(p.Target("local"))); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			c := p.Counts()
			wantWait := 0
			if tc.want.Action == ActionWait {
				wantWait = 1
			}
			if c.Wait != wantWait || c.Noop != 0 && tc.want.Action == ActionWait {
				t.Errorf("Counts() = %+v, want Wait %d", c, wantWait)
			}
			if got, want := p.HasChanges(), tc.want.Action == ActionUpdate; got != want {
				t.Errorf("HasChanges() = %v, want %v", got, want)
			}
		})
	}
}

// TestComputePlanWaitSecretsChanged: a rollout in progress with other
// secret values than the spec's is redeployed, not waited for.
func TestComputePlanWaitSecretsChanged(t *testing.T) {
	want := plantest.App("web", "v2")
	tg := ownerTarget{apps: []targets.ObservedApp{{Name: "web", Digest: want.Digest, Managed: true, Phase: targets.PhaseProgressing,
		SecretHashes: map[string]string{"TOKEN": "old-hash"}}}}
	hashing := secretHashingTarget{ownerTarget: tg}
	want.Secrets = map[string]string{"TOKEN": "new"}
	p, err := Compute(context.Background(), desiredOne("local", want), plantest.Tmap("local", hashing), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch := p.Target("local").Changes
	if len(ch) != 1 || ch[0].Action != ActionUpdate {
		t.Fatalf("changes = %+v, want one update", briefs(p.Target("local")))
	}
}

// secretHashingTarget reports fixed apps and hashes secrets as "h(value)".
type secretHashingTarget struct{ ownerTarget }

func (secretHashingTarget) SecretHashes(_ string, secrets map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range secrets {
		out[k] = "h(" + v + ")"
	}
	return out
}

// TestFingerprintCoversPhase: a phase change moves the fingerprint (a plan
// that waited for a rollout is stale once it ends), and a ready app hashes
// as it did before phases.
func TestFingerprintCoversPhase(t *testing.T) {
	base := targets.ObservedApp{Name: "web", Digest: plantest.Dg("v1"), Managed: true, Healthy: true, Status: "serving"}
	ready := base
	ready.Phase = targets.PhaseReady
	if Fingerprint([]targets.ObservedApp{base}) != Fingerprint([]targets.ObservedApp{ready}) {
		t.Error("an explicit ready phase changed the fingerprint of a healthy app")
	}
	prog := base
	prog.Phase = targets.PhaseProgressing
	if Fingerprint([]targets.ObservedApp{base}) == Fingerprint([]targets.ObservedApp{prog}) {
		t.Error("the fingerprint did not move when the app became progressing")
	}
	deg, failed := base, base
	deg.Healthy, deg.Phase = false, targets.PhaseDegraded
	failed.Healthy, failed.Phase = false, targets.PhaseFailed
	if Fingerprint([]targets.ObservedApp{deg}) == Fingerprint([]targets.ObservedApp{failed}) {
		t.Error("the fingerprint did not move from degraded to failed")
	}
	moves := describeMoves([]targets.ObservedApp{deg}, []targets.ObservedApp{failed})
	if diff := cmp.Diff([]string{"app web is now failed, plan saw it degraded"}, moves); diff != "" {
		t.Errorf("moves (-want +got):\n%s", diff)
	}
}

// TestApplyProgressing: an asynchronous target's Put that returns
// progressing ends OutcomeProgressing (not applied, not failed); the next
// plan waits for it (no second Put), a wait applies as progressing without
// a Put, a saved plan that waited is stale once the rollout ends, and the
// plan after that is a no-op.
func TestApplyProgressing(t *testing.T) {
	ctx := context.Background()
	m := plantest.NewMem()
	m.Async = true
	tg := plantest.Tmap("local", m)
	d := desiredOne("local", plantest.App("web", "v1"))

	res, err := Apply(ctx, mustPlan(t, d, tg), tg, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := res.App("local", "web")
	if r.Outcome != OutcomeProgressing || !strings.Contains(r.Detail, "rolling it out (rolling out)") {
		t.Fatalf("result = %+v, want progressing", r)
	}
	if res.Count(OutcomeApplied) != 0 || res.Count(OutcomeProgressing) != 1 {
		t.Errorf("counts: applied %d progressing %d", res.Count(OutcomeApplied), res.Count(OutcomeProgressing))
	}

	waiting := mustPlan(t, d, tg)
	if c := waiting.Counts(); c.Wait != 1 || waiting.HasChanges() {
		t.Fatalf("plan during the rollout: counts %+v, HasChanges %v; want one wait and no changes", c, waiting.HasChanges())
	}
	var text bytes.Buffer
	waiting.Render(&text)
	for _, want := range []string{"… wait   web", "reason: progressing towards " + ShortDigest(plantest.Dg("v1")) + "; waiting for the target's rollout",
		"No changes. 1 app is still rolling out the desired version"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("rendered plan lacks %q:\n%s", want, text.String())
		}
	}
	b, err := MarshalPlan(waiting)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"action": "wait"`)) || !bytes.Contains(b, []byte(`"phase": "progressing"`)) {
		t.Errorf("JSON plan lacks the wait and the phase:\n%s", b)
	}
	round, err := UnmarshalPlan(b)
	if err != nil {
		t.Fatal(err)
	}
	if round.Counts() != waiting.Counts() {
		t.Errorf("counts after a JSON round trip = %+v, want %+v", round.Counts(), waiting.Counts())
	}

	res, err = Apply(ctx, waiting, tg, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.App("local", "web"); r.Outcome != OutcomeProgressing {
		t.Errorf("applying a wait: %+v, want progressing", r)
	}
	if puts, _, _, _ := m.Counts(); puts != 1 {
		t.Errorf("%d Puts, want 1: a wait sends nothing", puts)
	}

	if !m.Settle("web") {
		t.Fatal("web was not progressing")
	}
	_, err = Apply(ctx, waiting, tg, ApplyOptions{})
	var se *StaleError
	if !errors.As(err, &se) || !errors.Is(err, ErrStalePlan) {
		t.Fatalf("applying the waiting plan after the rollout ended: %v, want a stale plan", err)
	}
	if !strings.Contains(err.Error(), "app web is now healthy, plan saw it unhealthy (progressing)") {
		t.Errorf("stale error does not say what moved: %v", err)
	}
	if after := mustPlan(t, d, tg); after.HasChanges() || after.Counts().Noop != 1 {
		t.Errorf("plan after the rollout: %+v, want one no-op", after.Counts())
	}
}

// TestApplyProgressingFailsLater: a rollout that was accepted and then
// failed on the target is redeployed by the next plan.
func TestApplyProgressingFailsLater(t *testing.T) {
	ctx := context.Background()
	m := plantest.NewMem()
	m.Async = true
	tg := plantest.Tmap("local", m)
	d := desiredOne("local", plantest.App("web", "v1"))
	if _, err := Apply(ctx, mustPlan(t, d, tg), tg, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	m.SetPhase("web", targets.PhaseFailed)
	p := mustPlan(t, d, tg)
	if diff := cmp.Diff([]brief{{"web", ActionUpdate, []string{"drift: unhealthy (status failed); redeploying " + ShortDigest(plantest.Dg("v1"))}}},
		briefs(p.Target("local"))); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// phaseTarget is a target whose Put returns a fixed result.
type phaseTarget struct {
	ownerTarget
	res targets.PutResult
}

func (p phaseTarget) Put(context.Context, targets.DesiredApp) (targets.PutResult, error) {
	return p.res, nil
}

// TestApplyPutPhaseFailed: a Put that returns no error but a failed phase
// is a failed change.
func TestApplyPutPhaseFailed(t *testing.T) {
	ctx := context.Background()
	tg := plantest.Tmap("local", phaseTarget{res: targets.PutResult{Phase: targets.PhaseFailed, Message: "image pull back-off"}})
	res, err := Apply(ctx, mustPlan(t, desiredOne("local", plantest.App("web", "v1")), tg), tg, ApplyOptions{})
	if !errors.Is(err, ErrApplyFailed) {
		t.Fatalf("err = %v, want ErrApplyFailed", err)
	}
	if r := res.App("local", "web"); r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "reports it failed: image pull back-off") {
		t.Errorf("result = %+v", r)
	}
}

// TestComputePlanDiffer: a target that reports object drift makes a
// digest-equal app an update listing the objects; an update carries them
// too; a Diff error is a warning and changes nothing; Diff is asked only
// about apps the target runs.
func TestComputePlanDiffer(t *testing.T) {
	ctx := context.Background()
	m := plantest.NewDiffingMem()
	m.Set("api", plantest.Dg("a1"), true, true)
	m.Set("web", plantest.Dg("w1"), true, true)
	m.Set("old", plantest.Dg("o1"), true, true)
	drift := []targets.ObjectDiff{{Object: "Deployment/shop/web", Change: "update", Fields: []string{"spec.replicas"}},
		{Object: "Service/shop/web", Change: "create"}}
	m.Drift["web"] = drift
	m.Drift["api"] = []targets.ObjectDiff{{Object: "ConfigMap/shop/api", Change: "update", Fields: []string{"data"}}}
	d := desiredOne("local", plantest.App("api", "a2"), plantest.App("new", "n1"), plantest.App("web", "w1"))
	p, err := Compute(ctx, d, plantest.Tmap("local", m), PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp := p.Target("local")
	want := []brief{
		{"api", ActionUpdate, []string{"new digest " + ShortDigest(plantest.Dg("a1")) + " → " + ShortDigest(plantest.Dg("a2"))}},
		{"new", ActionCreate, []string{"not on the target"}},
		{"old", ActionDelete, []string{"removed from the spec"}},
		{"web", ActionUpdate, []string{"drift: 2 objects differ on the target; redeploying " + ShortDigest(plantest.Dg("w1"))}},
	}
	if diff := cmp.Diff(want, briefs(tp)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(drift, tp.Changes[3].Objects); diff != "" {
		t.Errorf("web objects (-want +got):\n%s", diff)
	}
	if len(tp.Changes[0].Objects) != 1 {
		t.Errorf("api objects = %+v, want the drifted ConfigMap", tp.Changes[0].Objects)
	}
	if diff := cmp.Diff([]string{"api", "web"}, m.Diffed); diff != "" {
		t.Errorf("Diff asked about (-want +got):\n%s", diff)
	}
	var text bytes.Buffer
	p.Render(&text)
	if !strings.Contains(text.String(), "object: update Deployment/shop/web (spec.replicas)") ||
		!strings.Contains(text.String(), "object: create Service/shop/web") {
		t.Errorf("rendered plan lacks the objects:\n%s", text.String())
	}
	b, _ := json.Marshal(tp.Changes[3])
	if !strings.Contains(string(b), `"objects":[{"object":"Deployment/shop/web","change":"update","fields":["spec.replicas"]}`) {
		t.Errorf("JSON change lacks the objects: %s", b)
	}

	// No drift: a no-op. A Diff error: a warning, still a no-op.
	m = plantest.NewDiffingMem()
	m.Set("web", plantest.Dg("w1"), true, true)
	d = desiredOne("local", plantest.App("web", "w1"))
	if p, _ = Compute(ctx, d, plantest.Tmap("local", m), PlanOptions{}); p.Target("local").Changes[0].Action != ActionNoop {
		t.Errorf("without drift: %+v, want a no-op", briefs(p.Target("local")))
	}
	m.Err = errors.New("apiserver: connection refused")
	p, _ = Compute(ctx, d, plantest.Tmap("local", m), PlanOptions{})
	tp = p.Target("local")
	if tp.Changes[0].Action != ActionNoop || p.Errored() {
		t.Errorf("with a Diff error: %+v errored %v, want a no-op", briefs(tp), p.Errored())
	}
	if diff := cmp.Diff([]string{"warning: web: Cannot diff the app's objects"}, diagSummaries(tp.Diagnostics)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
