package notify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/sync/notify"
)

// receiver is a webhook receiver as README's "Notifications" shows it: it
// reads the raw body, verifies the signature, then trusts the payload.
func receiver(secret []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := notify.Verify(secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 0); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		fmt.Println("verified:", p.Summary)
		w.WriteHeader(http.StatusNoContent)
	}
}

func ExampleVerify() {
	secret := []byte("the contents of --notify-secret-file")
	body, _ := notify.WebhookBody(notify.Event{Kind: notify.KindApplyFailed, App: "web", Target: "prod",
		Digest: "sha256:" + strings.Repeat("ab", 32), Reason: "health check failed"})
	send := func(body []byte, sig string) int {
		req := httptest.NewRequest(http.MethodPost, "/hooks/ferry", strings.NewReader(string(body)))
		req.Header.Set(notify.SignatureHeader, sig)
		rec := httptest.NewRecorder()
		receiver(secret)(rec, req)
		return rec.Code
	}
	fmt.Println(send(body, notify.Sign(secret, body, time.Now())))
	fmt.Println(send(body, notify.Sign([]byte("someone else's secret"), body, time.Now())))
	fmt.Println(send(body, notify.Sign(secret, body, time.Now().Add(-time.Hour)))) // a replay
	// Output:
	// verified: Deploying web on target prod failed (sha256:abababababab): health check failed
	// 204
	// 401
	// 401
}
