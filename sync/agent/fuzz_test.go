package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
)

// FuzzWebhook sends arbitrary deliveries to the agent's real webhook
// handler: a provider (0 GitHub, 1 GitLab, 2 Gitea), an event name, a
// delivery id, a body and a signature header, which is replaced by the
// right one when signRight is set. The handler must never panic; a
// delivery without the right signature must get 401 and wake nothing; one
// with it must never get 401, and only a 202 "round queued" may wake the
// agent. The verifiers must agree with a reference HMAC/token check.
//
//	go test ./sync/agent -run '^$' -fuzz FuzzWebhook -fuzztime 60s
func FuzzWebhook(f *testing.F) {
	push := `{"ref":"refs/heads/main","after":"0123456789abcdef","repository":{"full_name":"x/y"}}`
	f.Add(uint8(0), "push", "d-1", []byte(push), "", true)
	f.Add(uint8(0), "ping", "", []byte(`{"zen":"hi"}`), "", true)
	f.Add(uint8(0), "push", "", []byte(push), "sha256=00", false)
	f.Add(uint8(1), "Push Hook", "u-1", []byte(push), "gl-token", false)
	f.Add(uint8(1), "Push Hook", "", []byte(`{"ref":"refs/heads/dev"}`), "", true)
	f.Add(uint8(2), "push", "g-1", []byte(push), "", true)
	f.Add(uint8(2), "push", "", []byte(`not json`), "", true)
	f.Add(uint8(2), "push", "", []byte(push), strings.Repeat("ab", 32), false)

	secrets := WebhookSecrets{GitHub: "gh-secret", GitLab: "gl-token", Gitea: "gt-secret"}
	a, err := NewAgent(Options{
		Repo: "http://127.0.0.1:9/none.git", DataDir: f.TempDir(), Releaser: newSpecReleaser(),
		Targets:  func(context.Context, *spec.Config) (map[string]targets.Target, error) { return nil, nil },
		Webhooks: secrets, APIToken: "api-token", Logger: testLogger(f),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	h := a.WebhookHandler()
	type provider struct {
		path, event, delivery, sig string
		secret                     string
		verify                     verifyFunc
	}
	providers := []provider{
		{"/hooks/github", "X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", secrets.GitHub, verifyGitHub},
		{"/hooks/gitlab", "X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Token", secrets.GitLab, verifyGitLab},
		{"/hooks/gitea", "X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature", secrets.Gitea, verifyGitea},
	}
	f.Fuzz(func(t *testing.T, which uint8, event, delivery string, body []byte, sig string, signRight bool) {
		p := providers[int(which)%len(providers)]
		mac := hmac.New(sha256.New, []byte(p.secret))
		mac.Write(body)
		right := hex.EncodeToString(mac.Sum(nil))
		switch {
		case signRight && p.path == "/hooks/github":
			sig = "sha256=" + right
		case signRight && p.path == "/hooks/gitlab":
			sig = p.secret
		case signRight:
			sig = right
		}
		req := httptest.NewRequest(http.MethodPost, p.path, bytes.NewReader(body))
		// Header values the HTTP client could not send are not input.
		for k, v := range map[string]string{p.event: event, p.delivery: delivery, p.sig: sig} {
			if strings.ContainsAny(v, "\r\n\x00") {
				return
			}
			req.Header.Set(k, v)
		}
		var valid bool
		switch p.path {
		case "/hooks/github":
			hexSig, ok := strings.CutPrefix(sig, "sha256=")
			valid = ok && strings.EqualFold(hexSig, right)
		case "/hooks/gitlab":
			valid = sig == p.secret
		default:
			valid = strings.EqualFold(sig, right)
		}
		if got := p.verify(p.secret, req.Header, body); got != valid {
			t.Fatalf("%s verifier says %v for signature %q, want %v", p.path, got, sig, valid)
		}
		select { // drain a wake left by an earlier input
		case <-a.wake:
		default:
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		woke := false
		select {
		case <-a.wake:
			woke = true
		default:
		}
		if !valid {
			if rec.Code != http.StatusUnauthorized || woke {
				t.Fatalf("unsigned delivery to %s: %d %s (woke %v), want 401 and no wake", p.path, rec.Code, rec.Body, woke)
			}
			return
		}
		if rec.Code == http.StatusUnauthorized {
			t.Fatalf("signed delivery to %s refused: %s", p.path, rec.Body)
		}
		if woke != (rec.Code == http.StatusAccepted && strings.Contains(rec.Body.String(), "round queued")) {
			t.Fatalf("signed delivery to %s: %d %s, woke %v", p.path, rec.Code, rec.Body, woke)
		}
		if woke {
			var ev pushEvent
			if json.Unmarshal(body, &ev) != nil || ev.Ref != "refs/heads/main" {
				t.Fatalf("a delivery with ref %q woke the agent", ev.Ref)
			}
		}
	})
}
