package host

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// logTap is a log destination that counts what is written to it and keeps
// the host's own records (not the guests'), so that a flooding guest cannot
// fill the test's memory. slog's handlers write one record per Write.
type logTap struct {
	total, guest atomic.Int64 // bytes of all records, of source=guest records
	guestLines   atomic.Int64

	mu   sync.Mutex
	host bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.total.Add(int64(len(p)))
	if bytes.Contains(p, []byte("source=guest")) {
		l.guest.Add(int64(len(p)))
		l.guestLines.Add(1)
		return len(p), nil
	}
	l.mu.Lock()
	if l.host.Len() < 1<<20 {
		l.host.Write(p)
	}
	l.mu.Unlock()
	return len(p), nil
}

// hostLogs returns the host's own records written so far.
func (l *logTap) hostLogs() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.host.String()
}

func newTapEnv(t *testing.T, opts Options) (*env, *logTap) {
	t.Helper()
	tap := &logTap{}
	opts.Logger = slog.New(slog.NewTextHandler(tap, nil))
	return newEnv(t, opts), tap
}

// result is the outcome of a request made in the background.
type result struct {
	code int
	took time.Duration
}

// goDo sends a GET in the background; the result arrives on the channel.
func goDo(t *testing.T, e *env, host string) <-chan result {
	t.Helper()
	ch := make(chan result, 1)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	go func() {
		start := time.Now()
		resp, err := e.srv.Client().Do(req)
		r := result{took: time.Since(start)}
		if err == nil {
			resp.Body.Close()
			r.code = resp.StatusCode
		}
		ch <- r
	}()
	return ch
}

// waitResult waits up to within for a background request.
func waitResult(t *testing.T, ch <-chan result, within time.Duration, what string) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("%s: request still running after %v", what, within)
		return result{}
	}
}

// TestGuestFloodStopsAtDeadline: hostile guests that spend their request
// inside host calls (a stderr flood through fd_write, a flood of the ferry
// log function, an hour-long poll_oneoff sleep), under both executors, stop
// at their deadline, and what they log is capped per request, with one
// line saying how much was dropped. Before the fix, the floods ran for
// minutes past a 1 s deadline (the interrupt is read every few thousand
// guest checks, and each check was a host call logging 32,768 lines).
func TestGuestFloodStopsAtDeadline(t *testing.T) {
	e, tap := newTapEnv(t, Options{})
	check := bystander(t, e)
	const timeout = time.Second
	tests := []struct {
		fixture string
		exec    deploy.Executor
		logs    bool
	}{
		{"flood", deploy.ExecutorWAGI, true},
		{"floodlog", deploy.ExecutorWAGI, true},
		{"reactor-flood", deploy.ExecutorReactor, true},
		{"sleep", deploy.ExecutorWAGI, false},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			w := fixture(t, tt.fixture)
			a := app(tt.fixture, tt.exec, w, "/...")
			a.Hosts = []string{tt.fixture + ".test"}
			a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(timeout), MemoryBytes: 1 << 20}
			e.deploy(t, a, w)
			for i := range 2 { // and the next request is stopped the same way
				before := tap.guest.Load()
				ch := goDo(t, e, tt.fixture+".test")
				check() // a neighbour keeps serving meanwhile
				r := waitResult(t, ch, timeout+10*time.Second, tt.fixture)
				if r.code != http.StatusGatewayTimeout {
					t.Errorf("request %d: status %d after %v, want 504", i, r.code, r.took)
				}
				logged := tap.guest.Load() - before
				if logged > guestLogCapForTest+4<<10 {
					t.Errorf("request %d: the guest logged %d KiB, over the %d KiB cap", i, logged>>10, guestLogCapForTest>>10)
				}
				if tt.logs && logged == 0 {
					t.Errorf("request %d: nothing of the guest's log was kept", i)
				}
			}
			if tt.logs && !strings.Contains(tap.hostLogs(), `msg="guest log truncated: dropped`) ||
				tt.logs && !strings.Contains(tap.hostLogs(), "app="+tt.fixture) {
				t.Errorf("no line saying how much of %s's log was dropped:\n%s", tt.fixture, lastLines(tap.hostLogs(), 5))
			}
			check()
		})
	}
}

// guestLogCapForTest is the documented per-request cap of guest logging
// (DefaultGuestLogBytes), counted in bytes of the text handler's records.
const guestLogCapForTest = 64 << 10

// TestDeleteStopsFlood: deleting an app whose guest floods stderr returns
// at once, and its in-flight request ends within the stop grace (5 s by
// default) with 503, though its deadline is a minute away.
func TestDeleteStopsFlood(t *testing.T) {
	e, tap := newTapEnv(t, Options{})
	check := bystander(t, e)
	w := fixture(t, "flood")
	a := app("flood", deploy.ExecutorWAGI, w, "/...")
	a.Hosts = []string{"flood.test"}
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(time.Minute), MemoryBytes: 1 << 20}
	e.deploy(t, a, w)
	ch := goDo(t, e, "flood.test")
	for tap.guest.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := e.rt.Delete("flood"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Delete took %v", d)
	}
	r := waitResult(t, ch, 5*time.Second+10*time.Second, "after Delete")
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("in-flight request of the deleted app: status %d, want 503", r.code)
	}
	t.Logf("in-flight request ended %v after Delete", time.Since(start).Round(time.Millisecond))
	check()
}

// TestCloseStopsFlood: Close returns soon after its context ends though a
// guest floods stderr with a deadline a minute away.
func TestCloseStopsFlood(t *testing.T) {
	tap := &logTap{}
	rt, err := New(Options{Logger: slog.New(slog.NewTextHandler(tap, nil)), CompilationCacheDir: sharedCacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	w := fixture(t, "flood")
	a := app("flood", deploy.ExecutorWAGI, w, "/...")
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(time.Minute), MemoryBytes: 1 << 20}
	if err := rt.Deploy(context.Background(), a, bundle(w)); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		rec := &statusRecorder{h: http.Header{}}
		req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		rt.ServeHTTP(rec, req)
		done <- rec.code
	}()
	for tap.guest.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- rt.Close(ctx) }()
	select {
	case err := <-closed:
		t.Logf("Close returned %v after %v", err, time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("Close still running 10 s after its 1 s context")
	}
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("in-flight request: status %d, want 503", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request still running after Close returned")
	}
}

// statusRecorder is a minimal http.ResponseWriter.
type statusRecorder struct {
	h    http.Header
	code int
}

func (s *statusRecorder) Header() http.Header { return s.h }
func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = 200
	}
	return len(p), nil
}
func (s *statusRecorder) WriteHeader(c int) {
	if s.code == 0 {
		s.code = c
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestMaxAppExecutions: with a cap of one execution per app, a second
// request to an app whose guest spins waits for the slot until its
// deadline and answers 503, while another app keeps serving.
func TestMaxAppExecutions(t *testing.T) {
	e := newEnv(t, Options{MaxAppExecutions: 1})
	check := bystander(t, e)
	w := fixture(t, "loop")
	// Two components of one app: a long deadline on /..., a short one on
	// /short, so the second request's deadline comes first.
	a := app("spin", deploy.ExecutorWAGI, w, "/...")
	a.Hosts = []string{"spin.test"}
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(2 * time.Second)}
	a.Components = append(a.Components, deploy.Component{Name: "short", Digest: digestOf(w),
		Executor: deploy.ExecutorWAGI, Routes: []string{"/short"},
		Limits: deploy.Limits{Timeout: deploy.Duration(300 * time.Millisecond)}})
	e.deploy(t, a, w)
	first := goDo(t, e, "spin.test")
	time.Sleep(100 * time.Millisecond) // the first holds the slot
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/short", nil)
	req.Host = "spin.test"
	second := make(chan result, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		r := result{}
		if err == nil {
			resp.Body.Close()
			r.code = resp.StatusCode
		}
		second <- r
	}()
	check()
	r1 := waitResult(t, first, 15*time.Second, "first")
	r2 := waitResult(t, second, 15*time.Second, "second")
	if r1.code != http.StatusGatewayTimeout || r2.code != http.StatusServiceUnavailable {
		t.Errorf("statuses %d, %d; want 504 (the spinner), 503 (waited for the app's slot)", r1.code, r2.code)
	}
	if !strings.Contains(e.logs.String(), "app at its limit of concurrent guest executions") {
		t.Error("no log line for the 503")
	}
}

// TestGuestLogRate: an app logging 8 KiB per request (within the
// per-request cap) is held to its rate: over many quick requests what it
// logs stays within the bucket plus the rate, and the dropped lines say so.
func TestGuestLogRate(t *testing.T) {
	const rate = 16 << 10
	e, tap := newTapEnv(t, Options{GuestLogRate: rate})
	w := fixture(t, "floodlog")
	a := app("chatty", deploy.ExecutorWAGI, w, "/...")
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(200 * time.Millisecond)}
	e.deploy(t, a, w)
	start := time.Now()
	for range 10 {
		e.get(t, "/")
	}
	took := time.Since(start).Seconds()
	limit := float64(4*rate) + took*rate + 8<<10
	if got := float64(tap.guest.Load()); got > limit {
		t.Errorf("logged %.0f bytes in %.1f s, over %.0f (bucket + rate)", got, took, limit)
	}
	if !strings.Contains(tap.hostLogs(), "the app's rate") {
		t.Errorf("no line saying the rate dropped records:\n%s", lastLines(tap.hostLogs(), 3))
	}
}
