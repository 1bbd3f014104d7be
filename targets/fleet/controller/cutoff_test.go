package controller

import (
	"context"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/faultproxy"
	"github.com/ferry-wasm/ferry/targets/fleet"
)

// TestSimCutOff: a fifth of the devices reach the server through a
// loopback fault proxy that goes down (every connection reset, new ones
// refused) for 3 s in the middle of a rollout; they reconnect, report, and
// the rollout completes with every device on v2 and none failed.
func TestSimCutOff(t *testing.T) {
	const n = 400
	e := newFleetEnv(t, simPolicy(n), n)
	proxy, err := faultproxy.New(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	devs := enrollMany(t, e.client, e.url, e.secret, n, 0)
	cut := devs[:n/5]
	ctx, cancel := context.WithCancel(context.Background())
	waitDirect := runAll(t, ctx, devs[n/5:], e.client, func() string { return e.url }, n)
	waitCut := runAll(t, ctx, cut, e.client, func() string { return "http://" + proxy.Addr() }, n)
	defer func() { cancel(); waitDirect(); waitCut() }()

	e.put(want(v1))
	e.waitFor("v1 completes", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	e.put(want(v2))
	e.waitFor("v2 in wave 2", 60*time.Second, func(r Rollout) bool { return r.State.Wave >= 1 })
	proxy.Down()
	proxy.ResetAll()
	time.Sleep(3 * time.Second)
	during, _ := e.ctl.Rollout(app)
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	r := e.waitFor("v2 completes", 60*time.Second, func(r Rollout) bool {
		return !r.State.Live() && r.State.Counts().Healthy == n
	})
	if r.State.Outcome != fleet.OutcomeCompleted || r.State.Counts().Failed != 0 {
		t.Fatalf("after the outage: %s", r.Summary)
	}
	if during.State.Outcome == fleet.OutcomeCompleted {
		t.Errorf("the rollout completed while a fifth of the fleet was cut off: %s", during.Summary)
	}
	for _, d := range devs {
		if running, _ := d.state(); running != v2 || d.switchesTo(v2) != 1 {
			t.Errorf("device %s runs %q, told to switch to v2 %d times", d.ID, running, d.switchesTo(v2))
		}
	}
	if proxy.Accepted() <= len(cut) {
		t.Errorf("the proxy accepted %d connections: the cut-off devices did not reconnect", proxy.Accepted())
	}
}
