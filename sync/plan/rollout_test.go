package plan

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
)

// previewer is a MemTarget that previews rollouts the way a fleet target
// does (the real one, over real devices, is tested in targets/fleet/hub
// and cmd/ferry); here only the plan's handling of the answer is tested.
type previewer struct {
	*plantest.MemTarget
	cur  map[string]*targets.RolloutState
	err  error
	seen []string
}

func (p *previewer) PreviewRollout(ctx context.Context, want targets.DesiredApp) (targets.RolloutPreview, error) {
	p.seen = append(p.seen, want.Name)
	if p.err != nil {
		return targets.RolloutPreview{}, p.err
	}
	return targets.RolloutPreview{Digest: want.Digest, Devices: 120, Waves: []int{12, 48, 60}, Rates: []int{10, 20, 40}, Current: p.cur[want.Name]}, nil
}

func TestRolloutPreview(t *testing.T) {
	m := plantest.NewMem()
	m.Set("api", plantest.Dg("a1"), true, true)
	m.Set("web", plantest.Dg("w1"), true, true)
	m.Set("gone", plantest.Dg("g1"), true, true)
	pv := &previewer{MemTarget: m, cur: map[string]*targets.RolloutState{
		"api": {From: plantest.Dg("a0"), To: plantest.Dg("a1"), Outcome: "aborted", Wave: 1, Waves: 3, Healthy: 3, Failed: 4, RolledBack: 7, Pending: 113, Reason: "4 of 7 reported devices failed"},
		"web": {From: plantest.Dg("w0"), To: plantest.Dg("w1"), Outcome: "running", Wave: 2, Waves: 3, Healthy: 20, Updating: 5, Pending: 95, Paused: true},
	}}
	d := Desired{Commit: "c1", Targets: []DesiredTarget{{Name: "edge", Type: "fleet", Apps: []targets.DesiredApp{
		plantest.App("api", "a2"), plantest.App("web", "w1"), plantest.App("new", "n1")}}}}
	p, err := Compute(context.Background(), d, map[string]targets.Target{"edge": pv}, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pv.seen, ",") != "api,new,web" {
		t.Fatalf("previewed %v; want every app but the delete", pv.seen)
	}
	var text strings.Builder
	p.RenderWith(&text, RenderOptions{ShowNoops: true})
	out := text.String()
	for _, want := range []string{
		"rollout: roll out " + ShortDigest(plantest.Dg("a2")) + " to 120 matching devices in 3 waves (12, 48, 60 devices; at most 10, 20, 40 a minute)",
		"current: " + ShortDigest(plantest.Dg("a0")) + " → " + ShortDigest(plantest.Dg("a1")) + " aborted, wave 1/3: 3 healthy, 0 updating, 4 failed, 7 rolled back, 113 pending; reason: 4 of 7 reported devices failed",
		"rollout: roll out " + ShortDigest(plantest.Dg("n1")) + " to 120 matching devices in 3 waves",
		"current: " + ShortDigest(plantest.Dg("w0")) + " → " + ShortDigest(plantest.Dg("w1")) + " running, wave 2/3: 20 healthy, 5 updating, 0 failed, 0 rolled back, 95 pending, paused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	// A no-op names no "roll out" (nothing would start), only its current rollout.
	if strings.Count(out, "rollout: roll out") != 2 {
		t.Errorf("want a roll-out line for the create and the update only:\n%s", out)
	}
	// JSON carries the same, and a plan file keeps it.
	b, err := MarshalPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Targets []struct {
			Changes []struct {
				App     string                  `json:"app"`
				Rollout *targets.RolloutPreview `json:"rollout"`
			} `json:"changes"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]*targets.RolloutPreview{}
	for _, ch := range doc.Targets[0].Changes {
		got[ch.App] = ch.Rollout
	}
	if got["gone"] != nil || got["api"] == nil || got["api"].Current == nil || got["api"].Current.Reason == "" || got["new"].Devices != 120 ||
		len(got["web"].Waves) != 3 || !got["web"].Current.Paused {
		t.Fatalf("JSON rollouts: %s", b)
	}
	back, err := UnmarshalPlan(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Targets[0].Changes[0].Rollout == nil {
		t.Fatal("the plan file lost the preview")
	}

	// A preview that fails is a warning; the plan stays applyable.
	pv.err, pv.seen = errors.New("agent unreachable"), nil
	p, _ = Compute(context.Background(), d, map[string]targets.Target{"edge": pv}, PlanOptions{Now: func() time.Time { return time.Unix(0, 0) }})
	if err := p.Applyable(); err != nil {
		t.Fatal(err)
	}
	warned := 0
	for _, dg := range p.Targets[0].Diagnostics {
		if dg.Summary == "Cannot preview the rollout" && dg.Severity == SeverityWarning && strings.Contains(dg.Detail, "agent unreachable") {
			warned++
		}
	}
	if warned != 3 {
		t.Fatalf("%d preview warnings, want 3: %+v", warned, p.Targets[0].Diagnostics)
	}
}
