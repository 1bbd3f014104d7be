package main

import (
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
	"github.com/ferry-wasm/ferry/sync/notify"
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
