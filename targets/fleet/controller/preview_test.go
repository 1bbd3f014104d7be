package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet"
)

// TestPreviewSimulatedFleet: PreviewRollout over a simulated fleet of
// devices speaking the real protocol says how many devices a version would
// reach in which waves, and how the current rollout stands: completed,
// aborted with its reason and rolled-back devices, paused; its counts
// always add up to the fleet.
func TestPreviewSimulatedFleet(t *testing.T) {
	const n = 200
	policy := simPolicy(n)
	policy.Rollout.RateLimit, policy.Rollout.RateGrowth, policy.Rollout.RateMax = 1000, 2, 3000 // fast; only the preview reads it
	e := newFleetEnv(t, policy, n)
	devs := enrollMany(t, e.client, e.url, e.secret, n, 0)
	ctx, cancel := context.WithCancel(context.Background())
	wait := runAll(t, ctx, devs, e.client, func() string { return e.url }, n)
	defer func() { cancel(); wait() }()

	preview := func(d string) targets.RolloutPreview {
		t.Helper()
		pv, err := e.ctl.PreviewRollout(context.Background(), want(d))
		if err != nil {
			t.Fatal(err)
		}
		if pv.Digest != d || pv.Devices != n || fmt.Sprint(pv.Waves) != "[2 18 80 100]" || fmt.Sprint(pv.Rates) != "[1000 2000 3000 3000]" {
			t.Fatalf("preview of %s: %+v, want %d devices in waves of 2, 18, 80 and 100 at 1000, 2000, 3000, 3000 a minute", fleet.Short(d), pv, n)
		}
		if c := pv.Current; c != nil && c.Pending+c.Updating+c.Healthy+c.Failed+c.RolledBack != n {
			t.Fatalf("current rollout's counts do not add up to %d: %+v", n, c)
		}
		return pv
	}
	same := func(c *targets.RolloutState, r Rollout) {
		t.Helper()
		cn := r.State.Counts()
		if c == nil || c.To != r.State.To || c.From != r.State.From || c.Outcome != string(r.State.Outcome) || c.Wave != r.State.Wave+1 || c.Waves != 4 ||
			c.Healthy != cn.Healthy || c.Updating != cn.Updating || c.Failed != cn.Failed || c.RolledBack != cn.RolledBack ||
			c.Pending != n-len(r.State.Devices) || c.Paused != r.Paused || c.Reason != r.State.Reason {
			t.Fatalf("current rollout %+v\ndoes not match the rollout:\n%s", c, r.Summary)
		}
	}

	if pv := preview(v1); pv.Current != nil {
		t.Fatalf("a current rollout before any: %+v", pv.Current)
	}
	e.put(want(v1))
	r := e.waitFor("v1 completes", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	pv := preview(v2)
	same(pv.Current, r)
	if pv.Current.Outcome != "completed" || pv.Current.Healthy != n || pv.Current.Wave != 4 {
		t.Fatalf("after v1: %+v", pv.Current)
	}

	// A bad version some later devices refuse aborts: the preview says so,
	// why, and how many went back.
	obs := make([]fleet.Device, len(devs))
	byID := map[string]*simDevice{}
	for i, d := range devs {
		obs[i], byID[d.ID] = fleet.Device{ID: d.ID}, d
	}
	asg, err := fleet.Assign(policy.Selector, policy.Rollout, obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range asg.Waves[1][:6] {
		byID[id].Failing = true
	}
	e.put(want(bad))
	r = e.waitFor("the bad rollout aborts", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	if r.State.Outcome != fleet.OutcomeAborted {
		t.Fatalf("want aborted: %s", r.Summary)
	}
	pv = preview(v2)
	same(pv.Current, r)
	if pv.Current.RolledBack == 0 || pv.Current.Pending == 0 || pv.Current.Reason == "" || pv.Current.From != v1 {
		t.Fatalf("aborted: %+v", pv.Current)
	}

	// A paused rollout says it is paused.
	e.put(want(v2))
	if err := e.ctl.Pause(app); err != nil {
		t.Fatal(err)
	}
	r, err = e.ctl.Rollout(app)
	if err != nil {
		t.Fatal(err)
	}
	pv = preview(v2)
	same(pv.Current, r)
	if !pv.Current.Paused || pv.Current.To != v2 {
		t.Fatalf("paused: %+v", pv.Current)
	}
}
