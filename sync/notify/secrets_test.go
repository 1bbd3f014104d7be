package notify

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNoSecretInPayloadsOrLogs publishes events whose texts carry the
// notifier's own secrets (the signing secret, the Slack URL, the webhook
// URL's path) and a URL with credentials, as a careless error message
// might, and scans every delivered body, header and log line.
func TestNoSecretInPayloadsOrLogs(t *testing.T) {
	hook := newReceiver(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		if i == 0 {
			w.WriteHeader(http.StatusBadGateway) // a retry, logged
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	slack := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	slackURL := slack.srv.URL + "/services/T0001/B0002/slack-url-secret-token"
	hookURL := hook.srv.URL + "/hooks/hook-path-secret"
	var logs bytes.Buffer
	var mu sync.Mutex
	n, reg := start(t, Options{Webhook: hookURL, Slack: slackURL, MinBackoff: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	leaky := "push to https://ferry:registry-password@registry.example.com/v2/ failed; secret " + string(testSecret) +
		"; see " + slackURL + " and " + hookURL
	for _, k := range Kinds() {
		n.Publish(Event{Kind: k, App: "web", Target: "prod", Reason: leaky})
	}
	waitCount(t, reg, SinkSlack, KindRollback, ResultRejected, 1)
	waitCount(t, reg, SinkWebhook, KindRollback, ResultDelivered, 1)
	secrets := []string{string(testSecret), "slack-url-secret-token", "hook-path-secret", "registry-password"}
	var scanned []string
	for _, d := range append(hook.wait(t, len(Kinds())+1, time.Second), slack.wait(t, len(Kinds()), time.Second)...) {
		scanned = append(scanned, string(d.body))
		for k, v := range d.header {
			scanned = append(scanned, k+": "+strings.Join(v, ","))
		}
	}
	mu.Lock()
	scanned = append(scanned, logs.String())
	mu.Unlock()
	for _, s := range scanned {
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%q leaks %q", s, sec)
			}
		}
	}
	// The reason survives, redacted.
	if body := scanned[0]; !strings.Contains(body, "https://[redacted]@registry.example.com") || !strings.Contains(body, "secret [redacted]") {
		t.Errorf("body %s", body)
	}
	if !strings.Contains(logs.String(), "rejected by the receiver") {
		t.Errorf("no log of the rejection: %s", logs.String())
	}
}
