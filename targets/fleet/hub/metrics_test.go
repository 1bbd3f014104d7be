package hub_test

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
)

// gauge returns the value of metric name with labels from reg, or -1.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestHubMetricsAndEvents: the hub's collector reads the inventory and
// the rollouts, counts rollout events, and passes them to OnEvent.
func TestHubMetricsAndEvents(t *testing.T) {
	var mu sync.Mutex
	var got []controller.Event
	h, err := hub.Open(hub.Options{Dir: t.TempDir(), OnEvent: func(e controller.Event) { mu.Lock(); got = append(got, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	enroll(t, h)
	enroll(t, h)
	if v := gauge(t, reg, "ferry_fleet_devices", map[string]string{"status": "silent"}); v != 2 {
		t.Errorf("silent devices = %v, want 2", v)
	}
	tg, err := h.FleetTarget("edge", &spec.FleetTarget{Rollout: spec.DefaultRollout()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(context.Background(), targets.DesiredApp{Name: "alpha", Ref: "127.0.0.1:1/x/alpha@" + digestA, Digest: digestA}); err != nil {
		t.Fatal(err)
	}
	c, _ := h.Controller("edge")
	c.StepAll()
	ra := map[string]string{"target": "edge", "app": "alpha"}
	if v := gauge(t, reg, "ferry_fleet_rollout_outcome", map[string]string{"target": "edge", "app": "alpha", "outcome": "running"}); v != 1 {
		t.Errorf("outcome running = %v", v)
	}
	if v := gauge(t, reg, "ferry_fleet_rollout_wave", ra); v != 1 {
		t.Errorf("wave = %v, want 1", v)
	}
	started := gauge(t, reg, "ferry_fleet_rollout_devices", map[string]string{"target": "edge", "app": "alpha", "status": "updating"})
	if started < 1 {
		t.Errorf("updating devices = %v", started)
	}
	if err := c.Abort("alpha", "test abort"); err != nil {
		t.Fatal(err)
	}
	if v := gauge(t, reg, "ferry_fleet_rollout_outcome", map[string]string{"target": "edge", "app": "alpha", "outcome": "aborted"}); v != 1 {
		t.Errorf("outcome aborted = %v", v)
	}
	for kind, want := range map[string]float64{"started": 1, "aborted": 1, "completed": 0} {
		if v := gauge(t, reg, "ferry_fleet_rollout_events_total", map[string]string{"kind": kind}); v != want {
			t.Errorf("events %s = %v, want %v", kind, v, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Kind != controller.EventStarted || got[1].Kind != controller.EventAborted || got[1].Reason != "test abort" || got[1].Target != "edge" {
		t.Errorf("OnEvent got %+v", got)
	}
}
