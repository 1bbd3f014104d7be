package agent

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// TestWebhookReplaysStartOneRound: one signed GitHub delivery replayed 50
// times (same body, signature and X-GitHub-Delivery) starts one round; the
// replays are answered without waking the agent. A new delivery id starts a
// round again, and GitLab and Gitea deliveries are de-duplicated by their
// own id headers.
func TestWebhookReplaysStartOneRound(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	h.waitFor("the first round to finish", func() bool { return h.lastRoundID() > 0 && h.agent.Status().Running == nil })

	body := `{"ref":"refs/heads/main","after":"0123456789abcdef","repository":{"full_name":"x/y"}}`
	send := func(path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, h.http.URL+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// deliver sends one delivery and, when the agent queued a round for it,
	// waits for that round to finish, so that each accepted delivery gets
	// a round of its own (wakes during a round would coalesce).
	deliver := func(path string, hdr map[string]string) {
		t.Helper()
		before := h.lastRoundID()
		code, resp := send(path, hdr)
		if code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("POST %s = %d %s", path, code, resp)
		}
		if strings.Contains(resp, "round queued") {
			h.waitRound(before, func(history.Round) bool { return true })
		}
	}
	webhookRounds := func() int {
		rs, err := h.agent.Rounds(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rs {
			if strings.HasPrefix(r.Trigger, "webhook:") {
				n++
			}
		}
		return n
	}

	gh := map[string]string{
		"X-GitHub-Event":      "push",
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", body),
	}
	for range 50 {
		deliver("/hooks/github", gh)
	}
	if n := webhookRounds(); n != 1 {
		t.Fatalf("50 replays of one delivery started %d rounds, want 1", n)
	}
	code, resp := send("/hooks/github", gh)
	if code != http.StatusOK || !strings.Contains(resp, "already received") {
		t.Fatalf("a replay = %d %s; want 200 saying the delivery was already received", code, resp)
	}

	// A new delivery of the same push is a new event.
	gh["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0959"
	deliver("/hooks/github", gh)
	if n := webhookRounds(); n != 2 {
		t.Fatalf("after a second delivery: %d webhook rounds, want 2", n)
	}

	gl := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-token", "X-Gitlab-Event-UUID": "gl-1"}
	gt := map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": hmacHex("gt-secret", body), "X-Gitea-Delivery": "gt-1"}
	for range 10 {
		deliver("/hooks/gitlab", gl)
		deliver("/hooks/gitea", gt)
	}
	if n := webhookRounds(); n != 4 {
		t.Fatalf("10 replays each of one GitLab and one Gitea delivery: %d webhook rounds in all, want 4", n)
	}
}
