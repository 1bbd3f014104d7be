package host

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// TestSchedDecision is the scheduler's two pure decisions, by table: which
// waiter goes first, and when a running execution hands its slot over.
func TestSchedDecision(t *testing.T) {
	spin := &schedApp{name: "spin", vtime: 900, holding: 2}
	spin2 := &schedApp{name: "spin2", vtime: 900, holding: 1}
	light := &schedApp{name: "light", vtime: 100}
	tk := func(a *schedApp, seq uint64) *schedTicket { return &schedTicket{app: a, seq: seq} }

	better_ := []struct {
		name string
		x, y *schedTicket
		want bool
	}{
		{"less charged app first", tk(light, 9), tk(spin, 1), true},
		{"more charged app later", tk(spin, 1), tk(light, 9), false},
		{"tie: app holding fewer slots first", tk(spin2, 9), tk(spin, 1), true},
		{"tie: app holding more slots later", tk(spin, 1), tk(spin2, 9), false},
		{"same app: older waiter first", tk(spin, 1), tk(spin, 2), true},
		{"same app: newer waiter later", tk(spin, 2), tk(spin, 1), false},
	}
	for _, c := range better_ {
		t.Run("better/"+c.name, func(t *testing.T) {
			if got := better(c.x, c.y); got != c.want {
				t.Errorf("better = %v, want %v", got, c.want)
			}
		})
	}

	yield := []struct {
		name    string
		mine    *schedApp
		heldFor time.Duration
		w       *schedTicket
		want    bool
	}{
		{"less charged app waits: yield at once", spin, 0, tk(light, 1), true},
		{"more charged app waits: keep", light, time.Hour, tk(spin, 1), false},
		{"equally charged other app waits: keep", spin, time.Hour, tk(spin2, 1), false},
		{"own app waits, slice not over: keep", spin, schedSlice - 1, tk(spin, 1), false},
		{"own app waits, slice over: yield", spin, schedSlice, tk(spin, 1), true},
	}
	for _, c := range yield {
		t.Run("yield/"+c.name, func(t *testing.T) {
			if got := shouldYield(c.mine, c.heldFor, c.w); got != c.want {
				t.Errorf("shouldYield = %v, want %v", got, c.want)
			}
		})
	}
}

// waitQueued waits until s has n waiters.
func waitQueued(t *testing.T, s *cpuSched, n int32) {
	t.Helper()
	for i := 0; s.waiting.Load() != n; i++ {
		if i > 10000 {
			t.Fatalf("%d waiters, want %d", s.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSchedQueueOrder: with one slot held by a spinning app, a waiter of an
// app that has not run goes before the spinning app's older waiter.
func TestSchedQueueOrder(t *testing.T) {
	s := newCPUSched(1)
	s.stale = time.Hour // a holder that makes no checkpoint keeps its slot
	s.burstMax = 0      // every waiter queues
	ctx := context.Background()
	var a, b, c schedTicket
	if err := s.enter(ctx, &a, "spin"); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	var wg sync.WaitGroup
	run := func(tk *schedTicket, app string) {
		defer wg.Done()
		if err := s.enter(ctx, tk, app); err != nil {
			t.Error(err)
			return
		}
		order <- app
		s.leave(tk)
	}
	wg.Add(2)
	go run(&b, "spin")
	waitQueued(t, s, 1)
	go run(&c, "neighbour")
	waitQueued(t, s, 2)
	s.leave(&a)
	wg.Wait()
	if first, second := <-order, <-order; first != "neighbour" || second != "spin" {
		t.Errorf("slots went to %s then %s, want neighbour then spin", first, second)
	}
	if s.running != 0 || len(s.apps) != 0 || len(s.holders) != 0 {
		t.Errorf("after all left: running %d, apps %v, holders %d", s.running, s.apps, len(s.holders))
	}
}

// TestSchedCheckpointHandsOver: a running execution's checkpoint gives the
// slot to a fairer waiter, and gets it back when that one leaves.
func TestSchedCheckpointHandsOver(t *testing.T) {
	s := newCPUSched(1)
	s.stale = time.Hour
	s.burstMax = 0
	ctx := context.Background()
	var spin, nb schedTicket
	if err := s.enter(ctx, &spin, "spin"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // the spinner is charged for its slot time
	entered := make(chan error, 1)
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go func() { entered <- s.enter(nctx, &nb, "neighbour") }()
	waitQueued(t, s, 1)
	resumed := make(chan struct{})
	go func() {
		s.checkpoint(ctx, &spin) // yields, then waits for the slot
		close(resumed)
	}()
	if err := <-entered; err != nil {
		t.Fatalf("neighbour: %v (the spinner's checkpoint did not hand its slot over)", err)
	}
	select {
	case <-resumed:
		t.Fatal("the spinner resumed while the neighbour held the only slot")
	case <-time.After(20 * time.Millisecond):
	}
	s.leave(&nb)
	<-resumed
	if !spin.hold {
		t.Error("the spinner resumed without a slot")
	}
	s.leave(&spin)
}

// TestSchedLendsStaleSlot: a holder that makes no checkpoint (blocked in a
// host call) lends its slot to a waiter instead of making it wait.
func TestSchedLendsStaleSlot(t *testing.T) {
	s := newCPUSched(1)
	s.burstMax = 0
	var sleeper, nb schedTicket
	if err := s.enter(context.Background(), &sleeper, "sleep"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.enter(ctx, &nb, "neighbour"); err != nil {
		t.Fatalf("neighbour behind a sleeping holder: %v", err)
	}
	if !sleeper.lent.Load() {
		t.Error("the sleeper's slot is not marked lent")
	}
	s.leave(&nb)
	// The sleeper wakes: its next checkpoint takes a slot again.
	s.checkpoint(context.Background(), &sleeper)
	if !sleeper.hold || sleeper.lent.Load() || s.running != 1 {
		t.Errorf("after the sleeper's checkpoint: hold %v, lent %v, running %d", sleeper.hold, sleeper.lent.Load(), s.running)
	}
	s.leave(&sleeper)
	if s.running != 0 {
		t.Errorf("running %d after all left", s.running)
	}
}

// TestSchedBurst: with the one slot held by a spinning app, a neighbour's
// execution starts at once on a burst grant, and the spinner's checkpoints
// go on without looking at the scheduler. A second execution of the
// neighbour's app queues (one burst per app) and kicks the spinner, which
// hands its slot over at its next checkpoint; the burst queues at its own
// first checkpoint and runs again before the spinner.
func TestSchedBurst(t *testing.T) {
	s := newCPUSched(1)
	s.stale = time.Hour
	ctx := context.Background()
	var spin, nb, nb2 schedTicket
	if err := s.enter(ctx, &spin, "spin"); err != nil {
		t.Fatal(err)
	}
	if err := s.enter(ctx, &nb, "neighbour"); err != nil || !nb.burst || !nb.hold {
		t.Fatalf("neighbour beside a spinner: err %v, burst %v, hold %v; want a burst at once", err, nb.burst, nb.hold)
	}
	// The spinner has run for an hour (so the order below does not depend
	// on how long this test's own steps take).
	s.mu.Lock()
	spin.app.vtime += int64(time.Hour)
	s.mu.Unlock()
	s.checkpoint(ctx, &spin)
	if !spin.hold || spin.kick.Load() || s.waiting.Load() != 0 {
		t.Fatalf("spinner beside a burst: hold %v, kick %v, %d waiting", spin.hold, spin.kick.Load(), s.waiting.Load())
	}

	second := make(chan error, 1)
	go func() { second <- s.enter(ctx, &nb2, "neighbour") }()
	waitQueued(t, s, 1)
	if !spin.kick.Load() || nb.kick.Load() {
		t.Errorf("a neighbour waiting: spinner kicked %v, neighbour's burst kicked %v; want only the spinner", spin.kick.Load(), nb.kick.Load())
	}
	spinResumed := make(chan struct{})
	go func() {
		s.checkpoint(ctx, &spin) // kicked: yields to the neighbour
		close(spinResumed)
	}()
	if err := <-second; err != nil || nb2.burst {
		t.Fatalf("second neighbour: err %v, burst %v; want the spinner's regular slot", err, nb2.burst)
	}
	nbResumed := make(chan struct{})
	go func() {
		s.checkpoint(ctx, &nb) // a burst's first checkpoint: no free slot, queues
		close(nbResumed)
	}()
	waitQueued(t, s, 2)
	s.leave(&nb2)
	<-nbResumed
	if !nb.hold || nb.burst {
		t.Errorf("the burst after its checkpoint: hold %v, burst %v; want a regular slot", nb.hold, nb.burst)
	}
	select {
	case <-spinResumed:
		t.Fatal("the spinner resumed before the less charged neighbour")
	default:
	}
	s.leave(&nb)
	<-spinResumed
	s.leave(&spin)
	if s.running != 0 || s.bursts != 0 || len(s.apps) != 0 || len(s.holders) != 0 || s.waiting.Load() != 0 {
		t.Errorf("after all left: running %d, bursts %d, apps %v, holders %d, waiting %d", s.running, s.bursts, s.apps, len(s.holders), s.waiting.Load())
	}
}

// TestSchedNeighbourBeforeSpinnersDeadline: on a host with one CPU slot,
// four spinning guests (deadline 5 s) hold and wait for it, and a
// neighbour's request still completes before any of them ends: the
// spinners hand the slot over at their checkpoints. A sleeping guest does
// not hold it either.
func TestSchedNeighbourBeforeSpinnersDeadline(t *testing.T) {
	for _, guest := range []string{"loop", "sleep"} {
		t.Run(guest, func(t *testing.T) {
			e := newEnv(t, Options{CPUSlots: 1})
			h := fixture(t, "hello")
			n := app("neighbour", deploy.ExecutorWAGI, h, "/...")
			n.Hosts = []string{"n.test"}
			e.deploy(t, n, h)
			w := fixture(t, guest)
			s := app("spin", deploy.ExecutorWAGI, w, "/...")
			s.Hosts = []string{"spin.test"}
			s.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(5 * time.Second)}
			e.deploy(t, s, w)

			var done atomic.Int32
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
					req.Host = "spin.test"
					if resp, err := e.srv.Client().Do(req); err == nil {
						resp.Body.Close()
					}
					done.Add(1)
				}()
			}
			defer wg.Wait()
			// All four are in the scheduler: one holds the slot (or, if
			// it sleeps, has lent it), the others wait or hold.
			for i := 0; ; i++ {
				e.rt.sched.mu.Lock()
				a := e.rt.sched.apps["spin"]
				active := 0
				if a != nil {
					active = a.active
				}
				e.rt.sched.mu.Unlock()
				if active == 4 {
					break
				}
				if i > 4000 {
					t.Fatalf("%d spinning executions in the scheduler, want 4", active)
				}
				time.Sleep(time.Millisecond)
			}
			code, body, _ := e.do(t, http.MethodGet, "n.test", "/", nil)
			if code != 200 || body == "" {
				t.Fatalf("neighbour: %d %q", code, body)
			}
			if d := done.Load(); d != 0 {
				t.Errorf("%d spinning requests ended before the neighbour's; want the neighbour first", d)
			}
		})
	}
}
