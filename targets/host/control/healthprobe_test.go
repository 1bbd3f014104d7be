package control_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// flakyApp is app name on the flaky-health reactor: its health path
// answers 200 three times, then 500; probed every 50ms after deploy, two
// failures make it unhealthy, and within 30s of its deploy the host rolls
// it back.
func flakyApp(name string) deploy.App {
	return deploy.App{
		Name:  name,
		Hosts: []string{name + ".test"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorReactor, Routes: []string{"/..."},
			Limits: deploy.Limits{MaxConcurrency: 1},
			Health: &deploy.Health{Path: "/healthz", Interval: deploy.Duration(50 * time.Millisecond),
				Timeout: deploy.Duration(2 * time.Second), FailureThreshold: 2, Bake: deploy.Duration(30 * time.Second)},
		}},
	}
}

// TestHealthRollbackWithinBake: a real guest that passes its deploy probe
// and then fails, deployed over a good version on a real host, is rolled
// back by the host's own prober; the status and the metrics say so, and the
// host does not flip back to the bad version.
func TestHealthRollbackWithinBake(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flaky, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flaky-health.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	good := w.push("apps/one", helloApp("one"), variant(t, "Hallo"))
	bad := w.push("apps/one", flakyApp("one"), flaky)
	w.sign(good, trusted)
	w.sign(bad, trusted)
	if _, err := w.client.PutApp(ctx, "one", api.PutRequest{Ref: good}); err != nil {
		t.Fatal(err)
	}
	// The bad version passes its deploy probe (its first request).
	if _, err := w.client.PutApp(ctx, "one", api.PutRequest{Ref: bad}); err != nil {
		t.Fatalf("put of the flaky version: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); w.srv.RunHealth(ctx) }() //nolint:errcheck // nil on cancel
	defer func() { cancel(); <-done }()

	var ai api.AppInfo
	deadline := time.Now().Add(20 * time.Second)
	for {
		ai, err = w.srv.Get("one")
		if err != nil {
			t.Fatal(err)
		}
		if ai.RolledBack != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ai.RolledBack == nil {
		t.Fatalf("the host did not roll back within 20s: %+v", ai)
	}
	if ai.Digest != digestOf(good) || ai.RolledBack.From != digestOf(bad) || ai.RolledBack.To != digestOf(good) {
		t.Fatalf("after the health rollback: serving %s, rolled back %+v; want %s from %s", ai.Digest, ai.RolledBack, digestOf(good), digestOf(bad))
	}
	if !strings.Contains(ai.RolledBack.Reason, "answered 500") || !strings.Contains(ai.RolledBack.Reason, "within its bake of 30s") {
		t.Fatalf("rollback reason %q does not say why", ai.RolledBack.Reason)
	}
	w.wantServes("one.test", "Hallo")
	// The status API shows it too.
	obs, err := w.client.App(ctx, "one")
	if err != nil || obs.RolledBack == nil || obs.RolledBack.From != digestOf(bad) {
		t.Fatalf("GET /v1/apps/one: %+v %v", obs, err)
	}
	// The counter is bumped just after the rollback is published, so it
	// may trail the status by a moment.
	var n float64
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n = metricOf(t, w, "ferry_host_health_rollbacks_total", "one"); n >= 1 || time.Now().After(end) {
			break
		}
	}
	if n != 1 {
		t.Fatalf("ferry_host_health_rollbacks_total = %v, want 1", n)
	}
	// The good version is older than the bad one: however its probes go,
	// the host never rolls "back" to the newer bad version.
	time.Sleep(300 * time.Millisecond)
	if ai, _ := w.srv.Get("one"); ai.Digest != digestOf(good) {
		t.Fatalf("the host flipped to %s after the rollback", ai.Digest)
	}

	// A restarted host (same state directory) still reports the rollback.
	want := *ai.RolledBack
	cancel()
	<-done
	w.stop()
	if rep := w.start(); len(rep.Failed) != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	after, err := w.client.App(context.Background(), "one")
	if err != nil {
		t.Fatal(err)
	}
	if after.RolledBack == nil || *after.RolledBack != want || after.Digest != digestOf(good) || after.Previous != digestOf(bad) {
		t.Fatalf("after a restart: serving %s (previous %s), rolled back %+v; want %+v", after.Digest, after.Previous, after.RolledBack, want)
	}
	// A PUT clears it, and the next restart agrees.
	if _, err := w.client.PutApp(context.Background(), "one", api.PutRequest{Ref: bad}); err != nil {
		t.Fatal(err)
	}
	w.stop()
	w.start()
	if after, err := w.client.App(context.Background(), "one"); err != nil || after.RolledBack != nil {
		t.Fatalf("after a PUT and a restart: rolled back %+v, %v", after.RolledBack, err)
	}
}

// metricOf sums the samples of metric family name labelled app=app.
func metricOf(t *testing.T, w *world, name, app string) float64 {
	t.Helper()
	fams, err := w.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "app" && l.GetValue() == app {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return sum
}
