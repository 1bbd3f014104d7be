package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

func TestAgentWebhookPush(t *testing.T) {
	h := newHarness(t, nil) // Interval 1h: only the webhook can wake it
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	first := h.waitRound(0, func(r history.Round) bool { return true })
	if first.Trigger != "start" || first.Result != history.RoundSucceeded {
		t.Fatalf("first round = %s %s (%s)", first.Trigger, first.Result, first.Error)
	}

	sha := h.push("a v2", "v2", "v1")
	if code := h.githubHook("gh-secret", "refs/heads/main", sha); code != 202 {
		t.Fatalf("webhook status %d, want 202", code)
	}
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	r := h.waitRound(first.ID, func(r history.Round) bool { return r.Commit == sha })
	if r.Trigger != "webhook:github" || r.Result != history.RoundSucceeded {
		t.Fatalf("round = %s %s (%s)", r.Trigger, r.Result, r.Error)
	}
	if got := roundApps(r, "a"); len(got) != 1 || got[0].Action != "update" || got[0].Result != "applied" || got[0].Digest != appDigest("a", "v2") {
		t.Fatalf("round records for a: %+v", got)
	}
	st := h.agent.Status()
	if st.LastSuccessfulCommit != sha || st.DesiredCommit != sha || st.FetchedCommit != sha {
		t.Fatalf("status commits: %+v", st)
	}
}

func TestAgentPolling(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 100 * time.Millisecond })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	sha := h.push("b v2", "v1", "v2")
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
	r := h.waitRound(0, func(r history.Round) bool { return r.Commit == sha && r.Result == history.RoundSucceeded })
	if r.Trigger != "interval" {
		t.Fatalf("trigger = %q, want interval", r.Trigger)
	}
	// Later rounds of the same commit do not release it again.
	h.waitRound(r.ID+1, func(history.Round) bool { return true })
	if n := h.rel.count(sha); n != 1 {
		t.Fatalf("commit released %d times, want 1", n)
	}
}

func TestAgentWebhookSignatures(t *testing.T) {
	body := `{"ref":"refs/heads/main","after":"abc"}`
	other := `{"ref":"refs/heads/dev","after":"abc"}`
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
		code    int
		wakes   bool
	}{
		{"github ok", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", body)}, body, 202, true},
		{"github bad signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hmacHex("wrong", body)}, body, 401, false},
		{"github no signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push"}, body, 401, false},
		{"github sha1 only", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=00"}, body, 401, false},
		{"github signature of another body", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", other)}, body, 401, false},
		{"github other branch", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", other)}, other, 202, false},
		{"github ping", "/hooks/github", map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", body)}, body, 200, false},
		{"github other event", "/hooks/github", map[string]string{"X-GitHub-Event": "issues", "X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", body)}, body, 202, false},
		{"gitlab ok", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-token"}, body, 202, true},
		{"gitlab bad token", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-tokem"}, body, 401, false},
		{"gitlab no token", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook"}, body, 401, false},
		{"gitea ok", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": hmacHex("gt-secret", body)}, body, 202, true},
		{"gitea bad signature", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": hmacHex("gh-secret", body)}, body, 401, false},
		{"gitea not hex", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": "zz"}, body, 401, false},
		{"valid signature, not JSON", "/hooks/gitea", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": hmacHex("gt-secret", "{")}, "{", 400, false},
		{"too large", "/hooks/github", map[string]string{"X-GitHub-Event": "push"}, strings.Repeat("x", 2<<10), 413, false},
	}
	h := newHarness(t, func(o *Options) { o.WebhookMaxBody = 1 << 10 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for len(h.agent.wake) > 0 {
				<-h.agent.wake
			}
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.agent.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.code)
			}
			if woke := len(h.agent.wake) > 0; woke != tt.wakes {
				t.Fatalf("woke = %v, want %v", woke, tt.wakes)
			}
		})
	}
	t.Run("disabled provider", func(t *testing.T) {
		h2 := newHarness(t, func(o *Options) { o.Webhooks = WebhookSecrets{} })
		req := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex("", body))
		rec := httptest.NewRecorder()
		h2.agent.Handler().ServeHTTP(rec, req)
		if rec.Code != 404 || len(h2.agent.wake) != 0 {
			t.Fatalf("status %d, woke %d", rec.Code, len(h2.agent.wake))
		}
	})
}

func TestAgentBadWebhookStartsNoRound(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	first := h.waitRound(0, func(history.Round) bool { return true })
	sha := h.push("a v2", "v2", "v1")
	if code := h.githubHook("not-the-secret", "refs/heads/main", sha); code != 401 {
		t.Fatalf("status %d, want 401", code)
	}
	// The agent idles (1h interval) with nothing queued.
	h.waitFor("agent idle", func() bool { return h.agent.Status().Running == nil })
	if n := len(h.agent.wake); n != 0 {
		t.Fatalf("%d wakes queued after a bad signature", n)
	}
	if got := h.lastRoundID(); got != first.ID {
		t.Fatalf("a round ran after a bad signature: last round %d, first %d", got, first.ID)
	}
	if got := h.mem.Digests()["a"]; got != appDigest("a", "v1") {
		t.Fatalf("a changed to %s", got)
	}
}

func TestAgentInvalidSpec(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	good := h.waitRound(0, func(history.Round) bool { return true })

	files := specFiles("v2", "v2")
	files["ferry.hcl"] = strings.Replace(files["ferry.hcl"], `  type     = "host"`, `  type     = "host"
  bogus    = 1`, 1)
	bad := h.work.CommitPush("typo", files)
	badLine := 1 + strings.Count(files["ferry.hcl"][:strings.Index(files["ferry.hcl"], "bogus")], "\n")
	h.githubHook("gh-secret", "refs/heads/main", bad)
	r := h.waitRound(good.ID, func(r history.Round) bool { return r.Fetched == bad })
	if r.Result != history.RoundFailed || r.Commit != good.Commit {
		t.Fatalf("round %s, commit %s (want failed, still %s)", r.Result, r.Commit, good.Commit)
	}
	if len(r.SpecErrors) == 0 || r.SpecErrors[0].File != "ferry.hcl" || r.SpecErrors[0].Line != badLine {
		t.Fatalf("history spec errors = %+v, want ferry.hcl:%d", r.SpecErrors, badLine)
	}
	if s := r.Step(history.StepLoad); s == nil || s.Status != history.StepFailed || !strings.Contains(s.Message, fmt.Sprintf("ferry.hcl:%d:", badLine)) {
		t.Fatalf("load step = %+v", s)
	}
	h.waitFor("status of the bad round", func() bool {
		st := h.agent.Status()
		return st.LastRound != nil && st.LastRound.ID >= r.ID
	})
	st := h.agent.Status()
	if len(st.SpecErrors) == 0 || st.SpecErrors[0].Line != badLine || !strings.Contains(strings.Join(st.Errors, "\n"), fmt.Sprintf("ferry.hcl:%d", badLine)) {
		t.Fatalf("status errors = %v / %+v", st.Errors, st.SpecErrors)
	}
	if st.DesiredCommit != good.Commit || st.FetchedCommit != bad {
		t.Fatalf("status commits desired=%s fetched=%s", st.DesiredCommit, st.FetchedCommit)
	}
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"}) // nothing from the bad commit
	// A later round of the same bad commit still says why.
	h.agent.Sync()
	r2 := h.waitRound(r.ID, func(history.Round) bool { return true })
	if r2.Result != history.RoundFailed || len(r2.SpecErrors) == 0 || !strings.Contains(r2.Error, fmt.Sprintf("ferry.hcl:%d", badLine)) {
		t.Fatalf("next round of the bad commit: %s %q %+v", r2.Result, r2.Error, r2.SpecErrors)
	}
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	r = r2

	fixed := h.push("fix", "v2", "v2")
	h.githubHook("gh-secret", "refs/heads/main", fixed)
	h.waitRunning(map[string]string{"a": "v2", "b": "v2"})
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Commit == fixed })
	if r.Result != history.RoundSucceeded {
		t.Fatalf("fixed round %s: %s", r.Result, r.Error)
	}
	h.waitFor("status of the fixed round", func() bool {
		st := h.agent.Status()
		return st.LastRound != nil && st.LastRound.ID >= r.ID
	})
	if st := h.agent.Status(); len(st.SpecErrors) != 0 || len(st.Errors) != 0 {
		t.Fatalf("errors remain after the fix: %v %v", st.Errors, st.SpecErrors)
	}
}

func TestAgentDriftRepair(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 150 * time.Millisecond })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	before := h.lastRoundID()
	// Someone removes an app by hand, and another one goes unhealthy.
	if err := h.mem.Delete(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	h.mem.Set("b", appDigest("b", "v1"), true, false)
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	h.waitFor("b healthy", func() bool {
		obs, _ := h.mem.Observe(context.Background())
		for _, o := range obs {
			if o.Name == "b" {
				return o.Healthy
			}
		}
		return false
	})
	r := h.waitRound(before, func(r history.Round) bool {
		return len(roundApps(r, "a")) > 0 && roundApps(r, "a")[0].Action == "create"
	})
	if r.Trigger != "interval" || r.Result != history.RoundSucceeded {
		t.Fatalf("repair round %s %s", r.Trigger, r.Result)
	}
	// Repaired within one interval: by the first or second round after the
	// drift (the drift may land just after a round's observe).
	if r.ID > before+2 {
		t.Fatalf("drift repaired by round %d, drift happened after round %d", r.ID, before)
	}
}
