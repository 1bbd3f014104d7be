package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// clock is the lease clock of a lockHost, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lockHost is a real runtime and control server on loopback whose leases
// follow clk. It verifies signatures as a deployed host does: it pulls from
// a registry of its own (regAddr) and trusts the first of testKeys.
type lockHost struct {
	t       *testing.T
	url     string
	apps    string // the app listener's URL
	regAddr string
	clk     *clock
	logs    *testenv.Buffer
}

func newLockHost(t *testing.T) *lockHost {
	t.Helper()
	h := &lockHost{t: t, clk: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, logs: &testenv.Buffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt, err := host.New(host.Options{StateDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	h.regAddr = reg.Addr()
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := testKeys(t)
	srv, err := control.NewServer(control.Options{Runtime: rt, Registry: rc, Policy: signer.Policy{Keys: []signer.Key{trusted.pub}},
		Token: testToken, Logger: log, Now: h.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	h.url = ts.URL
	appSrv := httptest.NewServer(rt)
	t.Cleanup(appSrv.Close)
	h.apps = appSrv.URL
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Close(ctx)
		if strings.Contains(h.logs.String(), testToken) {
			t.Error("the host logged its token")
		}
	})
	return h
}

// client returns a new client of the host; opts.HTTPClient may be set.
func (h *lockHost) client(opts driver.ClientOptions) *driver.Client {
	h.t.Helper()
	c, err := driver.NewClient(h.url, testToken, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// status reads GET /v1/lock (safe in any goroutine: a failure is an
// Error and a zero status).
func (h *lockHost) status() api.LockStatus {
	h.t.Helper()
	c, _ := driver.NewClient(h.url, testToken, driver.ClientOptions{})
	st, err := c.LockStatus(context.Background())
	if err != nil {
		h.t.Errorf("GET /v1/lock: %v", err)
	}
	return st
}

// holder is the live lease's holder, or "".
func (h *lockHost) holder() string {
	if st := h.status(); st.Held {
		return st.Lease.Holder
	}
	return ""
}

// conflicts returns an HTTP client that sends a value on the returned
// channel each time the host answers 409 to a POST /v1/lock, without
// blocking (the channel has room for one).
func conflicts() (*http.Client, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return &http.Client{Transport: testenv.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && r.Method == http.MethodPost && r.URL.Path == "/v1/lock" && resp.StatusCode == http.StatusConflict {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return resp, err
	})}, ch
}

var leaseIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestLockLifecycle: acquire, 409 naming the holder, renew, release,
// idempotent release, and the 410 of a lease that was released or that
// expired and was taken.
func TestLockLifecycle(t *testing.T) {
	ctx := context.Background()
	h := newLockHost(t)
	c := h.client(driver.ClientOptions{})
	if st := h.status(); st.Held {
		t.Fatalf("a new host has a lock: %+v", st)
	}

	a, err := c.AcquireLock(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	t0 := h.clk.now()
	want := api.Lease{ID: a.ID, Holder: "alice", Acquired: t0, Expires: t0.Add(api.DefaultLockTTL), TTL: "30s"}
	if diff := cmp.Diff(want, a); diff != "" || !leaseIDRE.MatchString(a.ID) {
		t.Fatalf("lease (-want +got):\n%s id %q", diff, a.ID)
	}
	if st := h.status(); !st.Held || st.Lease.Holder != "alice" || st.Lease.ID != a.ID {
		t.Fatalf("GET /v1/lock = %+v", st)
	}

	_, err = c.AcquireLock(ctx, "bob", 10*time.Second)
	var ae *driver.APIError
	if !errors.Is(err, driver.ErrLocked) || !errors.As(err, &ae) || ae.StatusCode != 409 || ae.Lock == nil ||
		ae.Lock.Holder != "alice" || !ae.Lock.Expires.Equal(want.Expires) || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("second acquire: %v (%+v); want 409 ErrLocked naming alice and her expiry", err, ae)
	}

	h.clk.advance(20 * time.Second)
	r, err := c.RenewLock(ctx, a.ID, time.Minute)
	if err != nil || !r.Expires.Equal(h.clk.now().Add(time.Minute)) || r.TTL != "1m0s" {
		t.Fatalf("renew: %+v, %v; want expiry now+1m", r, err)
	}
	h.clk.advance(50 * time.Second) // within the new TTL, not the old one
	if _, err := c.AcquireLock(ctx, "bob", 0); !errors.Is(err, driver.ErrLocked) {
		t.Fatalf("acquire within the renewed lease: %v, want ErrLocked", err)
	}
	if r, err = c.RenewLock(ctx, a.ID, 0); err != nil || r.TTL != "1m0s" {
		t.Fatalf("renew keeping the TTL: %+v, %v", r, err)
	}

	if err := c.ReleaseLock(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseLock(ctx, a.ID); err != nil {
		t.Fatalf("second release: %v; want none (idempotent)", err)
	}
	if st := h.status(); st.Held {
		t.Fatalf("after release: %+v", st)
	}
	if _, err := c.RenewLock(ctx, a.ID, 0); !errors.Is(err, driver.ErrLeaseLost) || !errors.As(err, &ae) || ae.StatusCode != 410 ||
		!strings.Contains(err.Error(), "released") {
		t.Fatalf("renew after release: %v; want 410 ErrLeaseLost saying released", err)
	}

	// Expired but not taken: still renewable (nobody held it between).
	b, err := c.AcquireLock(ctx, "bob", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.clk.advance(6 * time.Second)
	if st := h.status(); st.Held {
		t.Fatalf("an expired lease shows as held: %+v", st)
	}
	if _, err := c.RenewLock(ctx, b.ID, 0); err != nil {
		t.Fatalf("renew of an expired lease nobody took: %v", err)
	}
	// Expired and taken: lost.
	h.clk.advance(6 * time.Second)
	if _, err := c.AcquireLock(ctx, "carol", 0); err != nil {
		t.Fatalf("acquire after bob's lease expired: %v", err)
	}
	if _, err := c.RenewLock(ctx, b.ID, 0); !errors.Is(err, driver.ErrLeaseLost) || !strings.Contains(err.Error(), `taken by "carol"`) {
		t.Fatalf("renew of an expired and taken lease: %v; want ErrLeaseLost naming carol", err)
	}
	if got := h.holder(); got != "carol" {
		t.Fatalf("holder %q, want carol", got)
	}
}

// TestLockBadRequests: malformed bodies, TTLs out of bounds, unknown
// leases and missing tokens.
func TestLockBadRequests(t *testing.T) {
	h := newLockHost(t)
	tests := []struct {
		name, method, path, body string
		token                    string
		status                   int
		code                     string
	}{
		{"bad ttl", "POST", "/v1/lock", `{"holder":"a","ttl":"soon"}`, testToken, 400, api.CodeBadRequest},
		{"ttl too short", "POST", "/v1/lock", `{"holder":"a","ttl":"1s"}`, testToken, 400, api.CodeBadRequest},
		{"ttl too long", "POST", "/v1/lock", `{"holder":"a","ttl":"11m"}`, testToken, 400, api.CodeBadRequest},
		{"negative ttl", "POST", "/v1/lock", `{"holder":"a","ttl":"-30s"}`, testToken, 400, api.CodeBadRequest},
		{"no holder", "POST", "/v1/lock", `{"ttl":"30s"}`, testToken, 400, api.CodeBadRequest},
		{"holder with newline", "POST", "/v1/lock", `{"holder":"a\nb"}`, testToken, 400, api.CodeBadRequest},
		{"holder too long", "POST", "/v1/lock", `{"holder":"` + strings.Repeat("x", 300) + `"}`, testToken, 400, api.CodeBadRequest},
		{"unknown field", "POST", "/v1/lock", `{"holder":"a","owner":"b"}`, testToken, 400, api.CodeBadRequest},
		{"not json", "POST", "/v1/lock", `holder=a`, testToken, 400, api.CodeBadRequest},
		{"renew bad ttl", "PUT", "/v1/lock/0123", `{"ttl":"1h"}`, testToken, 400, api.CodeBadRequest},
		{"renew unknown lease", "PUT", "/v1/lock/0123456789abcdef0123456789abcdef", `{}`, testToken, 404, api.CodeLeaseNotFound},
		{"release unknown lease", "DELETE", "/v1/lock/0123456789abcdef0123456789abcdef", ``, testToken, 204, ""},
		{"get without token", "GET", "/v1/lock", ``, "", 401, api.CodeUnauthorized},
		{"acquire without token", "POST", "/v1/lock", `{"holder":"a"}`, "", 401, api.CodeUnauthorized},
		{"acquire with a wrong token", "POST", "/v1/lock", `{"holder":"a"}`, "wrong", 401, api.CodeUnauthorized},
		{"renew without token", "PUT", "/v1/lock/x", `{}`, "", 401, api.CodeUnauthorized},
		{"release without token", "DELETE", "/v1/lock/x", ``, "", 401, api.CodeUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, h.url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var eb api.ErrorBody
			if tc.code != "" {
				if err := json.Unmarshal(b, &eb); err != nil {
					t.Fatalf("answer %q is not an ErrorBody: %v", b, err)
				}
			}
			if resp.StatusCode != tc.status || eb.Code != tc.code {
				t.Fatalf("%s %s = %d %s, want %d %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
	if st := h.status(); st.Held {
		t.Fatalf("a refused request took the lock: %+v", st)
	}
	if strings.Contains(h.logs.String(), testToken) || strings.Contains(h.logs.String(), "wrong") {
		t.Fatal("a token reached the log")
	}

	// A client with a bad token fails at once rather than waiting.
	bad, _ := driver.NewClient(h.url, "nope", driver.ClientOptions{})
	if _, err := bad.Lock(context.Background(), "x"); !errors.Is(err, driver.ErrUnauthorized) {
		t.Fatalf("Lock with a bad token: %v, want ErrUnauthorized", err)
	}
	// Out-of-bounds client TTL is the host's 400, not a hang.
	short := h.client(driver.ClientOptions{LockTTL: time.Second})
	if _, err := short.Lock(context.Background(), "x"); !errors.Is(err, driver.ErrBadRequest) {
		t.Fatalf("Lock with a 1s TTL: %v, want ErrBadRequest", err)
	}
}

// TestLockBlocksUntilUnlock: a second Lock waits while the first holds
// (it has seen a 409) and gets the lock once the first unlocks.
func TestLockBlocksUntilUnlock(t *testing.T) {
	ctx := context.Background()
	h := newLockHost(t)
	unlockA, err := h.client(driver.ClientOptions{}).Lock(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	hc, saw409 := conflicts()
	got := make(chan func(), 1)
	go func() {
		u, err := h.client(driver.ClientOptions{HTTPClient: hc}).Lock(ctx, "second")
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	testenv.Within(t, saw409, "the second Lock to be refused")
	select {
	case <-got:
		t.Fatal("the second Lock returned while the first held the lock")
	default:
	}
	if hd := h.holder(); hd != "first" {
		t.Fatalf("holder %q while the second waits, want first", hd)
	}
	unlockA()
	unlockB := testenv.Within(t, got, "the second Lock after the first unlocked")
	if hd := h.holder(); hd != "second" {
		t.Fatalf("holder %q, want second", hd)
	}
	unlockB()
	if st := h.status(); st.Held {
		t.Fatalf("after both unlocked: %+v", st)
	}
}

// TestLockHolderCrashExpires: a holder that stops renewing (its host
// connection cut, as when its machine dies) keeps the lock until its TTL
// passes on the host's clock; then the waiter gets it, and the waiter's
// error-free Hold shows a fresh lease.
func TestLockHolderCrashExpires(t *testing.T) {
	ctx := context.Background()
	h := newLockHost(t)
	p := newProxy(t, strings.TrimPrefix(h.url, "http://"))
	crashing, err := driver.NewClient("http://"+p.Addr(), testToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held, err := crashing.Hold(ctx, "crashing")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()

	hc, saw409 := conflicts()
	got := make(chan *driver.HeldLock, 1)
	go func() {
		hl, err := h.client(driver.ClientOptions{HTTPClient: hc}).Hold(ctx, "waiter")
		if err != nil {
			t.Error(err)
		}
		got <- hl
	}()
	testenv.Within(t, saw409, "the waiter to be refused")
	p.Close() // the holder is gone: no renewal, no release
	h.clk.advance(api.DefaultLockTTL - time.Second)
	select { // a fresh refusal, after the clock moved
	case <-saw409:
	default:
	}
	testenv.Within(t, saw409, "the waiter to be refused again before the TTL passed")
	select {
	case <-got:
		t.Fatal("the waiter got the lock before the crashed holder's TTL passed")
	default:
	}
	h.clk.advance(2 * time.Second)
	w := testenv.Within(t, got, "the waiter after the TTL passed")
	if w == nil {
		t.FailNow()
	}
	defer w.Unlock()
	if hd := h.holder(); hd != "waiter" || w.Lease().Holder != "waiter" {
		t.Fatalf("holder %q, lease %+v; want waiter", hd, w.Lease())
	}
	if _, err := h.client(driver.ClientOptions{}).RenewLock(ctx, held.Lease().ID, 0); !errors.Is(err, driver.ErrLeaseLost) ||
		!strings.Contains(err.Error(), `taken by "waiter"`) {
		t.Fatalf("the crashed holder's lease: %v; want lost to waiter", err)
	}
}

// TestLockWaitCanceledNamesHolder: a Lock whose context ends while another
// holds the lock fails naming that holder.
func TestLockWaitCanceledNamesHolder(t *testing.T) {
	h := newLockHost(t)
	unlock, err := h.client(driver.ClientOptions{}).Lock(context.Background(), "ferry apply, pid 42 on build-1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	hc, saw409 := conflicts()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.client(driver.ClientOptions{HTTPClient: hc}).Lock(ctx, "impatient")
		done <- err
	}()
	testenv.Within(t, saw409, "the Lock to be refused")
	cancel()
	err = testenv.Within(t, done, "the canceled Lock")
	if !errors.Is(err, driver.ErrLocked) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `"ferry apply, pid 42 on build-1"`) {
		t.Fatalf("canceled Lock: %v; want ErrLocked and context.Canceled naming the holder", err)
	}
	if hd := h.holder(); hd != "ferry apply, pid 42 on build-1" {
		t.Fatalf("holder %q after the canceled wait", hd)
	}
}

// TestLockLostIsReported: when a holder's lease is force-unlocked and
// taken, its next renewal finds out: Lost closes, Err and Unlock wrap
// ErrLeaseLost, and the client's logger has the loss. Renewal runs on the
// client's real clock (every TTL/3 of the 5 s minimum TTL).
func TestLockLostIsReported(t *testing.T) {
	ctx := context.Background()
	h := newLockHost(t)
	var logs testenv.Buffer
	c := h.client(driver.ClientOptions{LockTTL: api.MinLockTTL, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	held, err := c.Hold(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	if held.Err() != nil {
		t.Fatal(held.Err())
	}
	// First a renewal goes through: the host's clock moved on by a second,
	// so a renewal moves the expiry.
	admin := h.client(driver.ClientOptions{})
	h.clk.advance(time.Second)
	deadline := time.Now().Add(time.Minute)
	st := h.status()
	for ; st.Held && st.Lease.Expires.Equal(held.Lease().Expires); st = h.status() {
		if time.Now().After(deadline) {
			t.Fatal("no renewal within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !st.Held || st.Lease.ID != held.Lease().ID {
		t.Fatalf("after renewal: %+v", st)
	}
	// The holder's own changes carry its live lease and go through.
	if err := c.Delete(ctx, "absent-app"); err != nil {
		t.Fatalf("DELETE while holding the lock: %v", err)
	}
	if err := admin.ReleaseLock(ctx, st.Lease.ID); err != nil { // force-unlock
		t.Fatal(err)
	}
	if _, err := admin.AcquireLock(ctx, "thief", 0); err != nil {
		t.Fatal(err)
	}
	testenv.Within(t, held.Lost(), "the holder to notice its lost lease")
	if err := held.Err(); !errors.Is(err, driver.ErrLeaseLost) || !strings.Contains(err.Error(), "released") {
		t.Fatalf("Err = %v; want ErrLeaseLost saying it was released", err)
	}
	// Fenced: the holder that lost its lease cannot change the host, and
	// neither can others without a lease while the thief holds the lock.
	if err := c.Delete(ctx, "absent-app"); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("DELETE by the holder that lost its lease: %v, want ErrLeaseLost", err)
	}
	if err := admin.Delete(ctx, "absent-app"); !errors.Is(err, driver.ErrLocked) {
		t.Fatalf("DELETE without a lease while the thief holds the lock: %v, want ErrLocked", err)
	}
	if err := held.Unlock(); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("Unlock = %v; want ErrLeaseLost", err)
	}
	if hd := h.holder(); hd != "thief" {
		t.Fatalf("Unlock of a lost lease released someone else's: holder %q", hd)
	}
	if !strings.Contains(logs.String(), "apply lock lost") {
		t.Fatalf("logger has no loss record:\n%s", logs.String())
	}
	// After Unlock c sends no lease any more: refused while the thief holds
	// the lock, fine once it is released.
	if err := c.Delete(ctx, "absent-app"); !errors.Is(err, driver.ErrLocked) {
		t.Fatalf("DELETE after Unlock (no lease any more) while the thief holds the lock: %v, want ErrLocked", err)
	}
	if err := admin.ReleaseLock(ctx, h.status().Lease.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "absent-app"); err != nil {
		t.Fatalf("DELETE after Unlock (no lease any more): %v", err)
	}
}

// TestLockHostRestart: the lock is in memory, so a restarted host (here a
// new control server behind the same address) has none: the old holder's
// renewal answers 404 and its lease is reported lost, its changes are
// refused, and a new holder gets the lock at once.
func TestLockHostRestart(t *testing.T) {
	ctx := context.Background()
	rt, err := host.New(host.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Close(c)
	})
	newServer := func() http.Handler {
		trusted, _ := testKeys(t)
		s, err := control.NewServer(control.Options{Runtime: rt, Policy: signer.Policy{Keys: []signer.Key{trusted.pub}}, Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var cur atomic.Pointer[http.Handler]
	first := newServer()
	cur.Store(&first)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*cur.Load()).ServeHTTP(w, r) }))
	defer ts.Close()

	c, _ := driver.NewClient(ts.URL, testToken, driver.ClientOptions{LockTTL: api.MinLockTTL})
	held, err := c.Hold(ctx, "before the restart")
	if err != nil {
		t.Fatal(err)
	}
	second := newServer() // the restart
	cur.Store(&second)
	testenv.Within(t, held.Lost(), "the holder to notice the restart")
	if err := held.Err(); !errors.Is(err, driver.ErrLeaseLost) || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "restarted") {
		t.Fatalf("Err = %v; want ErrLeaseLost from a 404 saying the host may have restarted", err)
	}
	if err := c.Delete(ctx, "absent-app"); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("DELETE with the lease from before the restart: %v, want ErrLeaseLost", err)
	}
	other, _ := driver.NewClient(ts.URL, testToken, driver.ClientOptions{})
	if _, err := other.AcquireLock(ctx, "after the restart", 0); err != nil {
		t.Fatalf("acquire after the restart: %v", err)
	}
	held.Unlock()
}

// TestLockHammer: several clients take and release the lock in a loop;
// never two at once inside.
func TestLockHammer(t *testing.T) {
	h := newLockHost(t)
	var inside, entries atomic.Int32
	var wg sync.WaitGroup
	for i := range 3 {
		c := h.client(driver.ClientOptions{})
		wg.Go(func() {
			for j := range 3 {
				unlock, err := c.Lock(context.Background(), fmt.Sprintf("worker %d round %d", i, j))
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders inside at once", n)
				}
				entries.Add(1)
				if hd := h.holder(); hd != fmt.Sprintf("worker %d round %d", i, j) {
					t.Errorf("host says holder %q, worker %d round %d thinks it holds", hd, i, j)
				}
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if entries.Load() != 9 {
		t.Fatalf("%d entries, want 9", entries.Load())
	}
}

// TestGroupLockOrder: two groups over the same two hosts, listed in
// opposite orders, lock concurrently again and again; both finish (a
// per-group order would deadlock them), and while a group holds, both
// hosts name it.
func TestGroupLockOrder(t *testing.T) {
	h1, h2 := newLockHost(t), newLockHost(t)
	g1, err := driver.NewGroup(h1.client(driver.ClientOptions{}), h2.client(driver.ClientOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	g2, err := driver.NewGroup(h2.client(driver.ClientOptions{}), h1.client(driver.ClientOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a deadlock fails instead of hanging
	defer cancel()
	var wg sync.WaitGroup
	for gi, g := range []*driver.Group{g1, g2} {
		wg.Go(func() {
			for j := range 3 {
				who := fmt.Sprintf("group %d round %d", gi, j)
				unlock, err := g.Lock(ctx, who)
				if err != nil {
					t.Error(err)
					return
				}
				if a, b := h1.holder(), h2.holder(); a != who || b != who {
					t.Errorf("%s holds, but the hosts name %q and %q", who, a, b)
				}
				unlock()
			}
		})
	}
	wg.Wait()
	if h1.status().Held || h2.status().Held {
		t.Fatal("a host is still locked after both groups finished")
	}

	// The same host twice is locked once, not waited for forever.
	gd, _ := driver.NewGroup(h1.client(driver.ClientOptions{}), h1.client(driver.ClientOptions{}))
	unlock, err := gd.Lock(ctx, "dup")
	if err != nil {
		t.Fatal(err)
	}
	unlock()

	// A failing member releases what the group took.
	// The dead host (nothing listens on loopback port 9) sorts after the
	// live one (an ephemeral port, 32768 and up), so the live one is
	// locked first and must be released.
	dead, _ := driver.NewClient("http://127.0.0.1:9", testToken, driver.ClientOptions{})
	if h1.url >= dead.Endpoint() {
		t.Fatalf("test assumption: %s sorts before %s", h1.url, dead.Endpoint())
	}
	gf, _ := driver.NewGroup(dead, h1.client(driver.ClientOptions{}))
	if _, err := gf.Lock(ctx, "doomed"); !errors.Is(err, targets.ErrUnavailable) {
		t.Fatalf("group Lock with a dead host: %v, want ErrUnavailable", err)
	}
	if st := h1.status(); st.Held {
		t.Fatalf("the live host stayed locked after the group failed: %+v", st)
	}
	if l := h1.logs.String(); !strings.Contains(l, `msg="apply lock released" holder=doomed`) {
		t.Fatalf("the live host was never locked and released by the failing group:\n%s", l)
	}
}

// TestLockUnsupportedHost: against a server without /v1/lock (an older
// ferry-host), Hold says so and Lock goes on without a lock.
func TestLockUnsupportedHost(t *testing.T) {
	old := httptest.NewServer(http.NewServeMux()) // answers 404 to everything
	defer old.Close()
	var logs bytes.Buffer
	c, _ := driver.NewClient(old.URL, testToken, driver.ClientOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := c.Hold(context.Background(), "x"); !errors.Is(err, driver.ErrLockUnsupported) {
		t.Fatalf("Hold: %v, want ErrLockUnsupported", err)
	}
	unlock, err := c.Lock(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if !strings.Contains(logs.String(), "no apply lock") {
		t.Fatalf("no warning logged:\n%s", logs.String())
	}
}

// TestLockHolderDeploysOnlySigned: on a host that verifies signatures, the
// lock holder's signed deploy goes through and serves; its deploy of an
// unsigned artifact, or of one signed by a key the host does not trust, is
// refused by the verification (not by the lock) and changes nothing; and a
// client without the lease cannot deploy the signed artifact while the lock
// is held.
func TestLockHolderDeploysOnlySigned(t *testing.T) {
	ctx := context.Background()
	h := newLockHost(t)
	trusted, other := testKeys(t)
	pusher, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	push := func(greeting string, k *keyPair) string {
		t.Helper()
		res, err := pusher.PushApp(ctx, h.regAddr+"/locked/"+strings.ToLower(greeting), helloApp("locked"), map[string][]byte{"web": variant(t, greeting)}, registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if k != nil {
			if _, err := signer.Sign(ctx, res.Ref, k.priv, signer.SignOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return res.Ref
	}
	good, unsigned, foreign := push("Hallo", &trusted), push("Hullo", nil), push("Hollo", &other)

	c := h.client(driver.ClientOptions{})
	held, err := c.Hold(ctx, "signed deploys")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	outsider := h.client(driver.ClientOptions{})
	if _, err := outsider.PutApp(ctx, "locked", api.PutRequest{Ref: good}); !errors.Is(err, driver.ErrLocked) {
		t.Fatalf("PUT without the lease while the lock is held: %v, want ErrLocked", err)
	}
	ai, err := c.PutApp(ctx, "locked", api.PutRequest{Ref: good})
	if err != nil {
		t.Fatalf("the holder's signed PUT: %v", err)
	}
	if ai.VerifiedBy != trusted.pub.Name || ai.Digest != digestOf(good) {
		t.Fatalf("the holder's signed PUT: verified by %q digest %s; want %s and %s", ai.VerifiedBy, ai.Digest, trusted.pub.Name, digestOf(good))
	}
	for _, tc := range []struct {
		name, ref string
		want      error
	}{
		{"unsigned", unsigned, signer.ErrUnsigned},
		{"signed by an untrusted key", foreign, signer.ErrNoMatchingKey},
	} {
		if _, err := c.PutApp(ctx, "locked", api.PutRequest{Ref: tc.ref}); !errors.Is(err, targets.ErrVerification) || !strings.Contains(err.Error(), tc.want.Error()) {
			t.Errorf("the holder's PUT of an artifact %s: %v; want a verification error (%v)", tc.name, err, tc.want)
		}
	}
	if now, err := c.App(ctx, "locked"); err != nil || now.Digest != digestOf(good) {
		t.Fatalf("after the refused PUTs the host runs %s (%v), want %s", now.Digest, err, digestOf(good))
	}
	req, _ := http.NewRequest(http.MethodGet, h.apps+"/", nil)
	req.Host = "locked.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Hallo from WAT") {
		t.Fatalf("locked.test answers %d %q, want the signed Hallo version", resp.StatusCode, b)
	}
}
