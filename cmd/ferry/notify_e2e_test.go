package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
)

// notifyE2EReceiver is a webhook receiver on loopback written as a user
// would: it verifies each delivery with notify.Verify before it trusts
// the body.
type notifyE2EReceiver struct {
	srv    *httptest.Server
	mu     stdsync.Mutex
	hooks  []notify.WebhookPayload
	slack  []notify.SlackPayload
	bad    []string
	secret []byte
}

func newNotifyE2EReceiver(t *testing.T, secret []byte) *notifyE2EReceiver {
	rc := &notifyE2EReceiver{secret: secret}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/services/") { // the Slack sink
			var p notify.SlackPayload
			if err := json.Unmarshal(body, &p); err != nil {
				rc.bad = append(rc.bad, "slack: "+err.Error())
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			rc.slack = append(rc.slack, p)
			return
		}
		if err := notify.Verify(rc.secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 0); err != nil {
			rc.bad = append(rc.bad, err.Error())
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			rc.bad = append(rc.bad, err.Error())
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		rc.hooks = append(rc.hooks, p)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *notifyE2EReceiver) find(kind notify.Kind, app string) (notify.WebhookPayload, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, p := range rc.hooks {
		if p.Kind == kind && p.App == app {
			return p, true
		}
	}
	return notify.WebhookPayload{}, false
}

// TestNotifyE2EApplyFailed runs `ferry agent` with --notify-webhook,
// --notify-secret-file and a Slack URL from FERRY_NOTIFY_SLACK against a
// real host; a commit whose module traps fails its apply. The receiver
// verifies the signed delivery naming the app, target, digest and commit;
// the Slack sink gets its message; /metrics counts both; the agent's log
// shows neither the secret nor the Slack URL's path.
func TestNotifyE2EApplyFailed(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	secret := []byte("notify-e2e-signing-secret")
	secretFile := filepath.Join(t.TempDir(), "notify.secret")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := newNotifyE2EReceiver(t, secret)
	slackURL := rc.srv.URL + "/services/T0001/B0002/slack-secret-path"
	t.Setenv("FERRY_NOTIFY_SLACK", slackURL)

	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("alpha v1")
	w.Push()
	a := agentE2EStartAgent(t, e, srv.URL(), "--interval", "300ms",
		"--notify-webhook", rc.srv.URL+"/hooks/ferry", "--notify-secret-file", secretFile)
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)

	trap, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "trap.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteBytes("alpha.wasm", trap)
	c2 := w.Commit("alpha traps")
	w.Push()

	var got notify.WebhookPayload
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		if got, ok = rc.find(notify.KindApplyFailed, "alpha"); ok {
			break
		}
		if time.Now().After(deadline) {
			rc.mu.Lock()
			t.Fatalf("no apply.failed delivery within a minute; got %+v, refused %v", rc.hooks, rc.bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Target != "local" || got.Commit != c2 || !strings.HasPrefix(got.Digest, "sha256:") || got.Round == 0 || got.Reason == "" ||
		!strings.Contains(got.Summary, "Deploying alpha on target local failed") {
		t.Errorf("apply.failed delivery %+v", got)
	}
	agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")

	m := agentE2EWaitMetrics(t, a, func(m map[string]float64) bool {
		return m[`ferry_notifications_total{kind="apply.failed",result="delivered",sink="webhook"}`] >= 1 &&
			m[`ferry_notifications_total{kind="apply.failed",result="delivered",sink="slack"}`] >= 1
	})
	if m[`ferry_notifications_total{kind="apply.failed",result="delivered",sink="webhook"}`] < 1 ||
		m[`ferry_notifications_total{kind="apply.failed",result="delivered",sink="slack"}`] < 1 {
		t.Errorf("ferry_notifications_total does not count the deliveries")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) != 0 {
		t.Errorf("the receiver refused deliveries: %v", rc.bad)
	}
	found := false
	for _, p := range rc.slack {
		if strings.Contains(p.Text, "Deploying alpha on target local failed") && len(p.Blocks) > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no Slack message about alpha: %+v", rc.slack)
	}
	logs := a.stderr.String()
	for _, s := range []string{string(secret), "slack-secret-path", "/hooks/ferry"} {
		if strings.Contains(logs, s) {
			t.Errorf("the agent's log shows %q", s)
		}
	}
	if !strings.Contains(logs, "notifications on") {
		t.Errorf("the agent's log does not say notifications are on")
	}
}

// TestNotifyE2EHostRollback: a version that passes its deploy probe and
// then fails its health probes on a real host is rolled back by the host
// itself; the agent's next round sees it and the receiver gets one signed
// rollback event saying the host did it, and a health.degraded event is
// not sent for the version that runs again (it is healthy).
func TestNotifyE2EHostRollback(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	secret := []byte("notify-e2e-signing-secret")
	t.Setenv("FERRY_NOTIFY_SECRET", string(secret))
	rc := newNotifyE2EReceiver(t, secret)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("alpha v1")
	w.Push()
	a := agentE2EStartAgent(t, e, srv.URL(), "--interval", "300ms", "--notify-webhook", rc.srv.URL+"/hooks/ferry")
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EIdle(t, a)
	good := agentE2EObserved(t, h.CtlURL)["alpha"]
	if good == "" {
		t.Fatalf("the host does not report alpha: %v", agentE2EObserved(t, h.CtlURL))
	}

	flaky, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flaky-health.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EFlakyHCL("alpha")))
	w.WriteBytes("alpha.wasm", flaky)
	c2 := w.Commit("alpha on the flaky reactor")
	w.Push()
	deadline := time.Now().Add(time.Minute)
	var rb notify.WebhookPayload
	for {
		var ok bool
		if rb, ok = rc.find(notify.KindRollback, "alpha"); ok {
			break
		}
		if time.Now().After(deadline) {
			rc.mu.Lock()
			t.Fatalf("no rollback delivery within a minute; got %+v, refused %v", rc.hooks, rc.bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rb.By != notify.ByHost || rb.Previous != good || rb.Digest == good || !strings.HasPrefix(rb.Digest, "sha256:") ||
		rb.Target != "local" || !strings.Contains(rb.Reason, "answered 500") || rb.Commit != c2 {
		t.Errorf("rollback delivery %+v; want by the host, from the flaky digest to %s, saying why", rb, good)
	}
	// Three more rounds: the rollback is told once.
	agentE2EIdle(t, a)
	last := agentE2EIdle(t, a)
	agentE2EWaitRound(t, a, "three rounds later", time.Minute, func(r history.Round) bool { return r.ID >= last+3 })
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, p := range rc.hooks {
		if p.Kind == notify.KindRollback {
			n++
		}
	}
	if n != 1 || len(rc.bad) != 0 {
		t.Errorf("%d rollback deliveries (want 1), refused %v", n, rc.bad)
	}
}

// TestNotifyE2EFleetRollout: the fleet hub as `ferry agent` wires it
// (OnEvent through fleetNotify to a Notifier) tells a signed webhook
// receiver when a rollout starts and aborts.
func TestNotifyE2EFleetRollout(t *testing.T) {
	secret := []byte("notify-e2e-signing-secret")
	rc := newNotifyE2EReceiver(t, secret)
	n, err := notify.New(notify.Options{Webhook: rc.srv.URL + "/hooks/ferry", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Start(ctx) //nolint:errcheck // ends with ctx
	h, err := hub.Open(hub.Options{Dir: t.TempDir(), OnEvent: fleetNotify(n.Publish)})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := h.FleetTarget("edge", &spec.FleetTarget{Rollout: spec.DefaultRollout()})
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	if _, err := tg.Put(ctx, targets.DesiredApp{Name: "web", Ref: "127.0.0.1:1/x/web@" + digest, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	c, err := h.Controller("edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Abort("web", "stopped by the on-call"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, started := rc.find(notify.KindRolloutStarted, "web")
		_, aborted := rc.find(notify.KindRolloutAborted, "web")
		if started && aborted {
			break
		}
		if time.Now().After(deadline) {
			rc.mu.Lock()
			t.Fatalf("no rollout.started and rollout.aborted within 30s: %+v, refused %v", rc.hooks, rc.bad)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ab, _ := rc.find(notify.KindRolloutAborted, "web")
	if ab.Target != "edge" || ab.Digest != digest || ab.Reason != "stopped by the on-call" || ab.Devices == nil ||
		!strings.Contains(ab.Summary, "Rollout of web on target edge aborted") {
		t.Errorf("rollout.aborted delivery %+v", ab)
	}
}
