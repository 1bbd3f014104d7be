package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
)

var notifySecret = []byte("agent-notify-test-secret")

// hookReceiver is a real webhook receiver on loopback that accepts only
// deliveries whose signature notify.Verify accepts.
type hookReceiver struct {
	srv    *httptest.Server
	mu     stdsync.Mutex
	events []notify.Event
	bodies []string
	bad    int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := notify.Verify(notifySecret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 0); err != nil {
			rc.mu.Lock()
			rc.bad++
			rc.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.events = append(rc.events, p.Event)
		rc.bodies = append(rc.bodies, string(body))
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) of(kind notify.Kind, app string) []notify.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []notify.Event
	for _, e := range rc.events {
		if e.Kind == kind && e.App == app {
			out = append(out, e)
		}
	}
	return out
}

// withNotifier gives the agent a real Notifier that sends to rc.
func withNotifier(t *testing.T, rc *hookReceiver) func(*Options) {
	n, err := notify.New(notify.Options{Webhook: rc.srv.URL, Secret: notifySecret, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func(o *Options) { o.Notify = n.Publish }
}

// TestNotifyApplyFailedAndRollback: a version that turns unhealthy after
// the switch fails its apply; the agent rolls it back. The receiver gets
// both, signed, naming the app, target, digests, commit and round.
func TestNotifyApplyFailedAndRollback(t *testing.T) {
	rc := newHookReceiver(t)
	const secretValue = "s3cr3t-value-of-app-a"
	h := newHarness(t, func(o *Options) {
		withNotifier(t, rc)(o)
		o.Releaser = secretsReleaser{o.Releaser, map[string]string{"token": secretValue}}
	})
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	h.mem.Mu.Lock()
	h.mem.Fail[appDigest("a", "v2")] = plantest.FailAfterSwitch
	h.mem.Mu.Unlock()
	commit := h.push("a v2", "v2", "v1")
	h.agent.Wake("test")
	h.waitFor("apply.failed and rollback notifications", func() bool {
		return len(rc.of(notify.KindApplyFailed, "a")) > 0 && len(rc.of(notify.KindRollback, "a")) > 0
	})
	f := rc.of(notify.KindApplyFailed, "a")[0]
	if f.Target != "local" || f.Digest != appDigest("a", "v2") || f.Previous != appDigest("a", "v1") || f.Commit != commit || f.Round == 0 || f.Reason == "" {
		t.Errorf("apply.failed event %+v", f)
	}
	rb := rc.of(notify.KindRollback, "a")[0]
	if rb.By != notify.ByAgent || rb.Digest != appDigest("a", "v2") || rb.Previous != appDigest("a", "v1") || rb.Round != f.Round {
		t.Errorf("rollback event %+v", rb)
	}
	if len(rc.of(notify.KindApplyFailed, "b")) != 0 {
		t.Error("b was notified though it did not change")
	}
	h.mem.Mu.Lock()
	sent := h.mem.Secrets["a"]["token"]
	h.mem.Mu.Unlock()
	if sent != secretValue {
		t.Fatalf("the target got secret %q: the test's secret was not in play", sent)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.bad != 0 {
		t.Errorf("%d deliveries failed the receiver's signature check", rc.bad)
	}
	for _, b := range rc.bodies {
		if strings.Contains(b, secretValue) {
			t.Errorf("a notification holds the app's secret value: %s", b)
		}
	}
}

// secretsReleaser gives every released app the secret values vals.
type secretsReleaser struct {
	release.Releaser
	vals map[string]string
}

func (s secretsReleaser) Release(ctx context.Context, dir, commit string) (*release.RoundInput, error) {
	in, err := s.Releaser.Release(ctx, dir, commit)
	if in != nil {
		for i := range in.Desired.Targets {
			for j := range in.Desired.Targets[i].Apps {
				in.Desired.Targets[i].Apps[j].Secrets = s.vals
			}
		}
	}
	return in, err
}

// TestNotifyApplyFailedOncePerDigest: a digest that keeps failing is
// retried with backoff; it is notified when it first fails, not at every
// retry.
func TestNotifyApplyFailedOncePerDigest(t *testing.T) {
	rc := newHookReceiver(t)
	h := newHarness(t, func(o *Options) {
		withNotifier(t, rc)(o)
		o.Interval = 20 * time.Millisecond // the app's retries back off from here
	})
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	h.mem.Mu.Lock()
	h.mem.Fail[appDigest("a", "v2")] = plantest.FailKeep
	h.mem.Mu.Unlock()
	h.push("a v2", "v2", "v1")
	h.waitFor("three failed puts of a v2", func() bool {
		puts, _, _, _ := h.mem.Counts()
		return puts >= 2+3
	})
	h.waitFor("the first apply.failed", func() bool { return len(rc.of(notify.KindApplyFailed, "a")) > 0 })
	time.Sleep(100 * time.Millisecond)
	if n := len(rc.of(notify.KindApplyFailed, "a")); n != 1 {
		t.Fatalf("%d apply.failed events for one failing digest, want 1", n)
	}
}

// TestNotifyHealthDegradedOnce: an app that turns unhealthy is notified
// once, not every round, and again after it recovered and degraded anew.
func TestNotifyHealthDegradedOnce(t *testing.T) {
	rc := newHookReceiver(t)
	h := newHarness(t, withNotifier(t, rc))
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	round := func() {
		t.Helper()
		last := h.lastRoundID()
		h.agent.Wake("test")
		h.waitRound(last, func(r history.Round) bool { return true })
	}
	h.mem.SetPhase("b", targets.PhaseDegraded)
	round()
	round()
	h.waitFor("health.degraded", func() bool { return len(rc.of(notify.KindHealthDegraded, "b")) == 1 })
	time.Sleep(100 * time.Millisecond) // the second round's events, if any, have been sent by now
	if n := len(rc.of(notify.KindHealthDegraded, "b")); n != 1 {
		t.Fatalf("%d health.degraded events after two rounds, want 1", n)
	}
	e := rc.of(notify.KindHealthDegraded, "b")[0]
	if e.Target != "local" || e.Digest != appDigest("b", "v1") || e.Reason == "" {
		t.Errorf("event %+v", e)
	}
	h.mem.SetPhase("b", targets.PhaseReady)
	round()
	h.mem.SetPhase("b", targets.PhaseFailed)
	round()
	h.waitFor("a second health.degraded", func() bool { return len(rc.of(notify.KindHealthDegraded, "b")) == 2 })
	if n := len(rc.of(notify.KindHealthDegraded, "a")); n != 0 {
		t.Errorf("healthy app a notified %d times", n)
	}
}

// rolledBackTarget reports app b rolled back by the target itself.
type rolledBackTarget struct {
	*plantest.MemTarget
	mu stdsync.Mutex
	rb *targets.Rollback
}

func (r *rolledBackTarget) Observe(ctx context.Context) ([]targets.ObservedApp, error) {
	obs, err := r.MemTarget.Observe(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range obs {
		if obs[i].Name == "b" && r.rb != nil {
			obs[i].RolledBack = r.rb
		}
	}
	return obs, err
}

// TestNotifyHostRollback: a rollback the target made by itself is
// notified once, though every later round observes it again.
func TestNotifyHostRollback(t *testing.T) {
	rc := newHookReceiver(t)
	var rt *rolledBackTarget
	h := newHarness(t, func(o *Options) {
		withNotifier(t, rc)(o)
		o.Targets = func(context.Context, *spec.Config) (map[string]targets.Target, error) {
			return map[string]targets.Target{"local": rt}, nil
		}
	})
	rt = &rolledBackTarget{MemTarget: h.mem}
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	rt.mu.Lock()
	rt.rb = &targets.Rollback{From: appDigest("b", "v0"), To: appDigest("b", "v1"), Reason: "3 health probes failed within the bake", At: time.Now()}
	rt.mu.Unlock()
	for range 3 {
		last := h.lastRoundID()
		h.agent.Wake("test")
		h.waitRound(last, func(history.Round) bool { return true })
	}
	h.waitFor("rollback notification", func() bool { return len(rc.of(notify.KindRollback, "b")) > 0 })
	time.Sleep(100 * time.Millisecond)
	got := rc.of(notify.KindRollback, "b")
	if len(got) != 1 {
		t.Fatalf("%d rollback events over 3 rounds, want 1", len(got))
	}
	if e := got[0]; e.By != notify.ByHost || e.Digest != appDigest("b", "v0") || e.Previous != appDigest("b", "v1") || e.Target != "local" || e.Round == 0 ||
		e.Reason != "3 health probes failed within the bake" {
		t.Errorf("event %+v", e)
	}
}

// TestNotifyApplyFailedSkipsAbortedRollout: a fleet target refuses the
// digest of its aborted rollout (targets.ErrRolloutAborted) at every
// round; its controller already announced "rollout aborted", so the
// agent sends no "apply failed" for it — but does for any other failure.
func TestNotifyApplyFailedSkipsAbortedRollout(t *testing.T) {
	var got []notify.Event
	a := &Agent{opts: Options{Notify: func(e notify.Event) { got = append(got, e) }}, clock: realClock{}, failures: map[string]*appFailure{}}
	rr := &round{r: &history.Round{ID: 7, Commit: "c0ffee"}}
	aborted := fmt.Errorf("%w: the rollout of sha256:abc to fleet edge: 1 of 1 failed", targets.ErrRolloutAborted)
	a.failures["edge/alpha"] = &appFailure{digest: "sha256:abc", count: 1}
	a.notifyApplyFailed(rr, "edge", plan.AppResult{App: "alpha", Digest: "sha256:abc", Err: aborted, Error: aborted.Error()})
	if len(got) != 0 {
		t.Fatalf("aborted rollout notified as %+v", got)
	}
	other := fmt.Errorf("%w: connection refused", targets.ErrUnavailable)
	a.failures["edge/beta"] = &appFailure{digest: "sha256:def", count: 1}
	a.notifyApplyFailed(rr, "edge", plan.AppResult{App: "beta", Digest: "sha256:def", Err: other, Error: other.Error()})
	if len(got) != 1 || got[0].Kind != notify.KindApplyFailed || got[0].App != "beta" {
		t.Fatalf("other failure notified as %+v, want one apply failed for beta", got)
	}
}
