package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

var testSecret = []byte("s3cr3t-hmac-key-for-tests")

// delivery is one request a receiver got.
type delivery struct {
	at      time.Time
	header  http.Header
	body    []byte
	verify  error // Verify's answer, as the receiver computed it
	payload WebhookPayload
}

// receiver is a real HTTP server on 127.0.0.1:0 that checks each
// request's signature with Verify, as a user's receiver would, and
// answers with respond (200 when nil).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []delivery
	arrived chan struct{}
	respond func(i int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, respond func(i int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan struct{}, 1000), respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		d := delivery{at: time.Now(), header: r.Header.Clone(), body: body,
			verify: Verify(testSecret, r.Header.Get(SignatureHeader), body, time.Now(), 0)}
		_ = json.Unmarshal(body, &d.payload)
		rc.mu.Lock()
		i := len(rc.got)
		rc.got = append(rc.got, d)
		rc.mu.Unlock()
		rc.arrived <- struct{}{}
		if rc.respond != nil {
			rc.respond(i, w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// wait waits until the receiver got n requests.
func (rc *receiver) wait(t *testing.T, n int, within time.Duration) []delivery {
	t.Helper()
	deadline := time.After(within)
	for {
		rc.mu.Lock()
		got := len(rc.got)
		rc.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-rc.arrived:
		case <-deadline:
			t.Fatalf("receiver got %d requests within %s, want %d", got, within, n)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// start makes a Notifier with opts and a fresh registry and runs it
// until the test ends.
func start(t *testing.T, opts Options) (*Notifier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Metrics = reg
	if opts.Secret == nil {
		opts.Secret = testSecret
	}
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return n, reg
}

func failedApply() Event {
	return Event{Kind: KindApplyFailed, App: "web", Target: "prod", Digest: "sha256:" + strings.Repeat("ab", 32),
		Previous: "sha256:" + strings.Repeat("cd", 32), Commit: "0123456789abcdef0123", Round: 42,
		Reason: "health check GET /healthz answered 500 three times"}
}

func TestWebhookSignedAndVerified(t *testing.T) {
	rc := newReceiver(t, nil)
	n, reg := start(t, Options{Webhook: rc.srv.URL + "/hooks/ferry"})
	e := failedApply()
	e.Time = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	n.Publish(e)
	got := rc.wait(t, 1, 10*time.Second)
	d := got[0]
	if d.verify != nil {
		t.Fatalf("the receiver's Verify refused the delivery: %v (header %q)", d.verify, d.header.Get(SignatureHeader))
	}
	// The same body with one byte changed must not verify.
	bad := bytes.Replace(d.body, []byte(`"web"`), []byte(`"wab"`), 1)
	if err := Verify(testSecret, d.header.Get(SignatureHeader), bad, time.Now(), 0); err == nil {
		t.Fatal("a tampered body verified")
	}
	want := e
	want.ID = d.payload.ID
	if !strings.HasPrefix(want.ID, "evt_") {
		t.Errorf("event ID %q", want.ID)
	}
	if diff := cmp.Diff(want, d.payload.Event); diff != "" {
		t.Errorf("payload event (-want +got):\n%s", diff)
	}
	if d.payload.Version != PayloadVersion || !strings.Contains(d.payload.Summary, "Deploying web on target prod failed") {
		t.Errorf("payload version %d summary %q", d.payload.Version, d.payload.Summary)
	}
	if h := d.header; h.Get("X-Ferry-Event") != "apply.failed" || h.Get("X-Ferry-Delivery") != want.ID || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
	waitCount(t, reg, SinkWebhook, KindApplyFailed, ResultDelivered, 1)
}

// waitCount waits for the counter to reach want (the count follows the
// receiver's answer).
func waitCount(t *testing.T, reg *prometheus.Registry, sink string, kind Kind, result string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := count(t, reg, sink, kind, result)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry_notifications_total{sink=%q,kind=%q,result=%q} = %v, want %v", sink, kind, result, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetriesOn500ThenSucceeds(t *testing.T) {
	rc := newReceiver(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		if i < 2 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	n, reg := start(t, Options{Webhook: rc.srv.URL, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	n.Publish(failedApply())
	got := rc.wait(t, 3, 10*time.Second)
	waitCount(t, reg, SinkWebhook, KindApplyFailed, ResultDelivered, 1)
	for i, d := range got {
		if d.verify != nil {
			t.Errorf("attempt %d: %v", i+1, d.verify)
		}
		if d.payload.ID != got[0].payload.ID {
			t.Errorf("attempt %d has event ID %s, the first %s: a receiver cannot deduplicate", i+1, d.payload.ID, got[0].payload.ID)
		}
	}
	if c := count(t, reg, SinkWebhook, KindApplyFailed, ResultFailed); c != 0 {
		t.Errorf("failed = %v", c)
	}
	time.Sleep(100 * time.Millisecond)
	if len(rc.wait(t, 3, time.Second)) != 3 {
		t.Error("sent again after a 200")
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	rc := newReceiver(t, func(i int, w http.ResponseWriter, _ *http.Request) {
		if i == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	// The backoff alone would retry after a few milliseconds.
	n, reg := start(t, Options{Webhook: rc.srv.URL, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Second})
	n.Publish(Event{Kind: KindRolloutAborted, App: "web", Target: "edge", Reason: "3 of 10 devices failed"})
	got := rc.wait(t, 2, 10*time.Second)
	if gap := got[1].at.Sub(got[0].at); gap < 900*time.Millisecond {
		t.Fatalf("retried %s after a 429 with Retry-After: 1", gap)
	}
	waitCount(t, reg, SinkWebhook, KindRolloutAborted, ResultDelivered, 1)
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	n, reg := start(t, Options{Webhook: rc.srv.URL, MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	n.Publish(failedApply())
	waitCount(t, reg, SinkWebhook, KindApplyFailed, ResultFailed, 1)
	if got := len(rc.wait(t, 3, time.Second)); got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
	if c := count(t, reg, SinkWebhook, KindApplyFailed, ResultDelivered); c != 0 {
		t.Errorf("delivered = %v", c)
	}
}

func TestRejectedIsNotRetried(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	n, reg := start(t, Options{Webhook: rc.srv.URL, MinBackoff: time.Millisecond})
	n.Publish(failedApply())
	waitCount(t, reg, SinkWebhook, KindApplyFailed, ResultRejected, 1)
	time.Sleep(50 * time.Millisecond)
	if got := len(rc.wait(t, 1, time.Second)); got != 1 {
		t.Fatalf("%d attempts after a 401, want 1", got)
	}
}

func TestRetriesNetworkErrors(t *testing.T) {
	// A port nothing listens on: connection refused, then a receiver
	// takes the port over.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	n, reg := start(t, Options{Webhook: "http://" + addr + "/hook", MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	n.Publish(failedApply())
	waitCount(t, reg, SinkWebhook, KindApplyFailed, ResultFailed, 1)
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "notification given up") || !strings.Contains(out, "connection refused") {
		t.Errorf("log does not say why:\n%s", out)
	}
	if strings.Contains(out, "/hook") {
		t.Errorf("log shows the webhook URL's path:\n%s", out)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestHangingReceiverNeverBlocksPublish publishes many events while the
// receiver holds its first request open: every Publish returns while it
// hangs (a blocking Publish would never return before release), the
// queue keeps the newest events and counts the dropped ones, and once the
// receiver recovers the kept ones arrive, in order.
func TestHangingReceiverNeverBlocksPublish(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) {
		if i == 0 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	const queue, published = 4, 200
	n, reg := start(t, Options{Webhook: rc.srv.URL, QueueSize: queue, Timeout: time.Minute})
	n.Publish(Event{Kind: KindRollback, App: "first"})
	rc.wait(t, 1, 10*time.Second) // the sender is now stuck in the receiver
	var slowest time.Duration
	for i := range published {
		t0 := time.Now()
		n.Publish(Event{Kind: KindApplyFailed, App: "app", Round: uint64(i + 1)})
		slowest = max(slowest, time.Since(t0))
	}
	// Publish only takes a lock and copies an event: a generous bound
	// that a Publish waiting on the receiver (held for a minute) breaks.
	if slowest > 250*time.Millisecond {
		t.Errorf("slowest Publish took %s while the receiver hung", slowest)
	}
	t.Logf("slowest of %d Publish calls while the receiver hung: %s", published, slowest)
	if c := count(t, reg, SinkWebhook, KindApplyFailed, ResultDropped); c != published-queue {
		t.Errorf("dropped = %v, want %d", c, published-queue)
	}
	close(release)
	got := rc.wait(t, 1+queue, 10*time.Second)
	var rounds []uint64
	for _, d := range got[1:] {
		rounds = append(rounds, d.payload.Round)
	}
	if want := []uint64{published - 3, published - 2, published - 1, published}; !cmp.Equal(rounds, want) {
		t.Errorf("delivered rounds %v after recovery, want the newest %v in order", rounds, want)
	}
	waitCount(t, reg, SinkWebhook, KindApplyFailed, ResultDelivered, queue)
}

// TestHammer publishes from many goroutines at once (run with -race).
func TestHammer(t *testing.T) {
	rc := newReceiver(t, nil)
	sl := newReceiver(t, nil)
	n, reg := start(t, Options{Webhook: rc.srv.URL, Slack: sl.srv.URL + "/services/T/B/x", QueueSize: 10000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				n.Publish(Event{Kind: Kinds()[(g+i)%len(Kinds())], App: "a", Round: uint64(i)})
			}
		})
	}
	wg.Wait()
	rc.wait(t, 400, 30*time.Second)
	sl.wait(t, 400, 30*time.Second)
	total := 0.0
	for _, k := range Kinds() {
		total += count(t, reg, SinkWebhook, k, ResultDelivered)
	}
	for total < 400 {
		time.Sleep(5 * time.Millisecond)
		total = 0
		for _, k := range Kinds() {
			total += count(t, reg, SinkWebhook, k, ResultDelivered)
		}
	}
	if total != 400 {
		t.Fatalf("delivered %v, want 400", total)
	}
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"webhook without a secret", Options{Webhook: "https://hooks.example.com/x", Secret: []byte{}}},
		{"short secret", Options{Webhook: "https://hooks.example.com/x", Secret: []byte("short")}},
		{"not http", Options{Webhook: "ftp://hooks.example.com/x", Secret: testSecret}},
		{"slack without host", Options{Slack: "https:///services/T/B/secretpath"}},
	} {
		_, err := New(c.opts)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if strings.Contains(err.Error(), "secretpath") || strings.Contains(err.Error(), "/x") {
			t.Errorf("%s: the error shows the URL: %v", c.name, err)
		}
	}
	n, err := New(Options{})
	if err != nil || len(n.Sinks()) != 0 {
		t.Fatalf("no sinks: %v %v", n.Sinks(), err)
	}
	n.Publish(failedApply()) // no sink: nothing to do, never blocks
	var nilN *Notifier
	if nilN.Publisher() != nil {
		t.Error("a nil Notifier has a publisher")
	}
	nilN.Publish(failedApply())
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/XXXX": "https://hooks.slack.com/…",
		"https://hooks.example.com":                       "https://hooks.example.com",
		"https://hooks.example.com/?token=abc":            "https://hooks.example.com/…",
		"https://user:pw@hooks.example.com/x":             "https://hooks.example.com/…",
		"::":                                              "[invalid URL]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	n, err := New(Options{Webhook: "http://127.0.0.1:1/", Secret: testSecret, QueueSize: 1 << 10})
	if err != nil {
		b.Fatal(err)
	}
	e := failedApply()
	for b.Loop() {
		n.Publish(e) // not started: the queue fills and drops the oldest
	}
}
