package plan_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// The host target types hold the host's apply lock (control keeps no sync
// import, so the guards live here, with the consumer).
var (
	_ targets.Locker = (*driver.Client)(nil)
	_ targets.Locker = (*driver.Group)(nil)
)

const lockToken = "lock-token-0123456789abcdef"

// lockedHost is a host target whose Lock records, in a shared log, when it
// holds the host's lock (with the holder GET /v1/lock names then) and when
// it lets go; held, when set, runs while it holds, before Lock returns.
type lockedHost struct {
	*driver.Client
	name string
	log  *lockLog
	held func()
}

func (h *lockedHost) Lock(ctx context.Context, holder string) (func(), error) {
	unlock, err := h.Client.Lock(ctx, holder)
	if err != nil {
		return nil, err
	}
	st, err := h.Client.LockStatus(ctx)
	who := "nobody"
	if err != nil {
		who = err.Error()
	} else if st.Held {
		who = st.Lease.Holder
	}
	h.log.add(fmt.Sprintf("%s locked; the host names %q", h.name, who))
	if h.held != nil {
		h.held()
	}
	return func() {
		h.log.add(h.name + " unlocks")
		unlock()
	}, nil
}

type lockLog struct {
	mu    stdsync.Mutex
	lines []string
}

func (l *lockLog) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

func (l *lockLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestConcurrentAppliesSerialisedByHostLock: two plan.Apply calls, each
// with its own control client of one real ferry-host (runtime, control API
// on loopback, apps pulled from an in-process registry) and no LockDir, are
// serialised by the host's lease alone. A holds the lock and waits until
// the host has refused B's lock (409); then A applies and unlocks, and only
// then does B get the lock — by which time A's app runs, so B's plan (from
// the same empty host) is refused as stale.
func TestConcurrentAppliesSerialisedByHostLock(t *testing.T) {
	ctx := context.Background()
	reg, err := embedded.NewServer(ctx, embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	// The host checks signatures, as a real one does: every app is signed
	// with a key its policy trusts.
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	push := func(name string, sign bool) (deploy.App, *registry.PushResult) {
		app := deploy.App{Name: name, Hosts: []string{name + ".localhost"}, Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."}, Health: &deploy.Health{Path: "/healthz"},
		}}}
		res, err := rc.PushApp(ctx, reg.Addr()+"/lock/"+name, app, map[string][]byte{"web": wasm}, registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sign {
			if _, err := signer.Sign(ctx, res.Ref, key, signer.SignOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return app, res
	}
	desired := func(name string) plan.Desired {
		app, res := push(name, true)
		return plan.Desired{Commit: name, Targets: []plan.DesiredTarget{{Name: "h", Type: "host", Apps: []targets.DesiredApp{
			{Name: name, Ref: res.Ref, Digest: res.Digest.String(), App: app},
		}}}}
	}

	h := hosttest.Start(t, signer.Policy{Keys: []signer.Key{{Name: "release", Public: pub}}}, lockToken)
	srv, ctl := h.Srv, h.Ctl
	// Verification is on: an unsigned app is refused before anything runs.
	_, unsigned := push("unsigned", false)
	if _, err := srv.Put(ctx, "unsigned", api.PutRequest{Ref: unsigned.Ref}); !errors.Is(err, signer.ErrUnsigned) {
		t.Fatalf("the host accepted an unsigned app (err %v): signature checking is off", err)
	}

	log := &lockLog{}
	aHolds, aGo := make(chan struct{}), make(chan struct{})
	ca, err := driver.NewClient(ctl.URL, lockToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// B's client tells when the host refuses its lock.
	bRefused := make(chan struct{}, 1)
	cb, err := driver.NewClient(ctl.URL, lockToken, driver.ClientOptions{HTTPClient: &http.Client{
		Transport: testenv.RoundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := http.DefaultTransport.RoundTrip(r)
			if err == nil && r.Method == http.MethodPost && r.URL.Path == "/v1/lock" && resp.StatusCode == http.StatusConflict {
				select {
				case bRefused <- struct{}{}:
				default:
				}
			}
			return resp, err
		}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := &lockedHost{Client: ca, name: "A", log: log, held: func() { close(aHolds); <-aGo }}
	b := &lockedHost{Client: cb, name: "B", log: log}

	// Both plans are computed now, from the same empty host.
	planA, err := plan.Compute(ctx, desired("app-a"), map[string]targets.Target{"h": a}, plan.PlanOptions{})
	if err != nil || planA.Applyable() != nil {
		t.Fatalf("plan A: %v %v", err, planA.Applyable())
	}
	planB, err := plan.Compute(ctx, desired("app-b"), map[string]targets.Target{"h": b}, plan.PlanOptions{})
	if err != nil || planB.Applyable() != nil {
		t.Fatalf("plan B: %v %v", err, planB.Applyable())
	}

	type result struct {
		res *plan.ApplyResult
		err error
	}
	doneA, doneB := make(chan result, 1), make(chan result, 1)
	go func() {
		res, err := plan.Apply(ctx, planA, map[string]targets.Target{"h": a}, plan.ApplyOptions{Holder: "apply A"})
		doneA <- result{res, err}
	}()
	testenv.Within(t, aHolds, "A to hold the lock")
	go func() {
		res, err := plan.Apply(ctx, planB, map[string]targets.Target{"h": b}, plan.ApplyOptions{Holder: "apply B"})
		doneB <- result{res, err}
	}()
	testenv.Within(t, bRefused, "the host to refuse B's lock while A holds it")
	close(aGo)

	ra := testenv.Within(t, doneA, "apply A")
	if ra.err != nil || ra.res.Count(plan.OutcomeApplied) != 1 {
		t.Fatalf("apply A: %+v, %v; want app-a applied", ra.res, ra.err)
	}
	rb := testenv.Within(t, doneB, "apply B")
	if !errors.Is(rb.err, plan.ErrStalePlan) {
		t.Fatalf("apply B: %+v, %v; want a stale plan (A's app appeared before B could check)", rb.res, rb.err)
	}
	want := []string{
		`A locked; the host names "apply A"`,
		"A unlocks",
		`B locked; the host names "apply B"`,
		"B unlocks",
	}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Fatalf("lock order (-want +got):\n%s", diff)
	}
	if ls := srv.LockStatus(); ls.Held {
		t.Fatalf("the host is still locked after both applies: %+v", ls.Lease)
	}
	apps := srv.List()
	if len(apps) != 1 || apps[0].Name != "app-a" || apps[0].VerifiedBy != "release" {
		t.Fatalf("the host runs %+v, want only app-a, verified by the release key", apps)
	}
}
