package agent

import (
	"container/list"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ferry-wasm/ferry/internal/httproute"
)

// maxDeliveries is how many webhook delivery ids the agent remembers to
// refuse replays; the least recently seen are forgotten first.
const maxDeliveries = 4096

// WebhookHandler serves push webhooks; a valid push to the watched branch
// wakes a round at once:
//
//	POST /hooks/github  X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
//	POST /hooks/gitlab  X-Gitlab-Token: <token>
//	POST /hooks/gitea   X-Gitea-Signature: <hex HMAC-SHA256 of the body>
//
// Each check uses the provider's secret from Options.Webhooks and compares
// in constant time. A provider without a secret answers 404; a bad or
// missing signature 401 (and nothing happens); a body over
// Options.WebhookMaxBody 413. A verified push to the watched branch gets 202
// {"status": "round queued"}; other events and branches get 202 with
// "ignored" in the status. GitHub's ping gets 200.
//
// A verified delivery whose id (X-GitHub-Delivery, X-Gitlab-Event-UUID,
// X-Gitea-Delivery) the agent has seen before is a replay: it gets 200
// {"status": "ignored: delivery ... already received"} and wakes nothing.
// The agent remembers the last 4096 ids (least recently seen forgotten
// first), in memory, shared by every handler of the agent. Deliveries
// without an id are not de-duplicated.
func (a *Agent) WebhookHandler() http.Handler {
	mux := httproute.New()
	a.webhookRoutes(mux)
	return mux
}

func (a *Agent) webhookRoutes(mux *httproute.Mux) {
	mux.Handle("/hooks/github", a.hook("github", a.opts.Webhooks.GitHub, verifyGitHub, "X-GitHub-Event", "push", "X-GitHub-Delivery"))
	mux.Handle("/hooks/gitlab", a.hook("gitlab", a.opts.Webhooks.GitLab, verifyGitLab, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID"))
	mux.Handle("/hooks/gitea", a.hook("gitea", a.opts.Webhooks.Gitea, verifyGitea, "X-Gitea-Event", "push", "X-Gitea-Delivery"))
}

// deliveryLRU is a bounded set of webhook delivery ids, least recently
// seen evicted first. The zero value is empty and ready; it is safe for
// concurrent use.
type deliveryLRU struct {
	mu    sync.Mutex
	order list.List                // of string keys, most recent at the front
	byKey map[string]*list.Element // key -> its element in order
}

// seen records key and reports whether it was already there (then it
// becomes the most recently seen).
func (l *deliveryLRU) seen(key string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byKey == nil {
		l.byKey = map[string]*list.Element{}
	}
	if e, ok := l.byKey[key]; ok {
		l.order.MoveToFront(e)
		return true
	}
	l.byKey[key] = l.order.PushFront(key)
	for l.order.Len() > max {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.byKey, old.Value.(string))
	}
	return false
}

type verifyFunc func(secret string, h http.Header, body []byte) bool

func verifyGitHub(secret string, h http.Header, body []byte) bool {
	sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
	return ok && verifyHMAC(secret, sig, body)
}

func verifyGitea(secret string, h http.Header, body []byte) bool {
	return verifyHMAC(secret, h.Get("X-Gitea-Signature"), body)
}

func verifyHMAC(secret, sigHex string, body []byte) bool {
	got, err := hex.DecodeString(sigHex)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func verifyGitLab(secret string, h http.Header, _ []byte) bool {
	got := sha256.Sum256([]byte(h.Get("X-Gitlab-Token")))
	want := sha256.Sum256([]byte(secret))
	return h.Get("X-Gitlab-Token") != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// pushEvent is the part of a push payload the agent reads; GitHub, GitLab
// and Gitea share it.
type pushEvent struct {
	Ref   string `json:"ref"`
	After string `json:"after"`
}

func (a *Agent) hook(provider, secret string, verify verifyFunc, eventHeader, pushEventName, deliveryHeader string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret == "" {
			writeJSON(w, http.StatusNotFound, errorBody{Error: provider + " webhooks are not configured"})
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "use POST"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.WebhookMaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "body too large"})
				return
			}
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "cannot read body"})
			return
		}
		if !verify(secret, r.Header, body) {
			a.met.errors.WithLabelValues("webhook").Inc()
			a.log.Warn("webhook refused: bad signature", "provider", provider, "remote", r.RemoteAddr)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "signature does not match"})
			return
		}
		// Only a verified delivery is remembered: an unsigned one cannot
		// take an id away from the real one.
		if id := r.Header.Get(deliveryHeader); id != "" && len(id) <= 256 {
			if a.deliveries.seen(provider+"\x00"+id, maxDeliveries) {
				a.log.Info("webhook: replayed delivery ignored", "provider", provider)
				writeJSON(w, http.StatusOK, map[string]string{"status": "ignored: delivery " + strconv.Quote(id) + " already received"})
				return
			}
		}
		event := r.Header.Get(eventHeader)
		if provider == "github" && event == "ping" {
			writeJSON(w, http.StatusOK, map[string]string{"status": "pong"})
			return
		}
		if event != pushEventName {
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "ignored: event " + event + " is not a push"})
			return
		}
		var ev pushEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "the push payload is not JSON"})
			return
		}
		if ev.Ref != "refs/heads/"+a.opts.Branch {
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "ignored: push to " + ev.Ref + ", watching refs/heads/" + a.opts.Branch})
			return
		}
		a.log.Info("webhook: push", "provider", provider, "commit", shortSHA(ev.After))
		a.Wake("webhook:" + provider)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "round queued"})
	})
}
