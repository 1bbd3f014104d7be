package host

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/ferry-wasm/ferry/internal/wasmbin"
)

// CPU scheduler between guests (Options.CPUSlots).
//
// wazero's native code cannot be preempted by the Go scheduler; the
// instrumented checks (interrupt.go) leave it for Go every fuelPerYield
// checks, but Go itself only takes a goroutine off its P after 10 ms. Eight
// guests in loops on two Ps then kept each of a neighbour's goroutines (the
// connection's reader, the handler) waiting tens of ms per hop, 0.1-0.5 s
// per request.
//
// The scheduler lets at most CPUSlots guest executions run guest code at
// once host-wide; the others wait, parked, off every P. Waiters are ordered
// by weighted fair queueing across apps: each app is charged the wall time
// its executions hold a slot, and the waiter of the app charged least goes
// first (ties: the app running fewer executions, then the oldest waiter).
// An app that was idle comes back charged as much as the least charged app
// already active, so past idleness buys no monopoly.
//
// The instrumented yield function (called every fuelPerYield checks) gets
// a wazero function listener, which calls checkpoint: when a waiter of an
// app charged less than the running one is queued, the running execution
// hands its slot over and queues itself; with none, it costs a counter and
// an atomic load. Every gosEvery checkpoints it also calls runtime.Gosched,
// so the connection goroutines of other requests get a P within tens of µs
// rather than Go's 10 ms slice. An execution that makes no checkpoint for
// staleAfter (blocked in a host call, a reactor's _initialize, or a module
// run without instrumentation) lends its slot to a waiter and queues for
// one at its next checkpoint, so sleeping guests do not hold the CPU.
//
// Burst grants: an execution whose app runs nothing at the moment, arriving
// when no slot is free, starts at once on a burst grant (at most burstMax
// = CPUSlots of them outstanding, one per app) instead of queueing. It
// runs on the P kept free of guests until its first checkpoint, at most
// fuelPerYield checks, and there takes a free slot or queues like any
// other. A short request (the hello guest makes no checkpoint) then never
// waits for a spinner's checkpoint and the hand-over between two threads,
// one of them demoted: that hand-over was the neighbour's 1-20 ms tail.
// Bursts are charged like slots, so an app living on them pays for it.
//
// A holder takes the scheduler's lock at a checkpoint only when asked to
// (kick: a waiter of another app came; lent; burst) or every gosEvery
// checkpoints while anyone waits, not at every one: a demoted thread
// preempted by the kernel with the lock held stalled every enter.
//
// Nothing is killed: a spinning guest still runs to its deadline, only
// slower while others want the CPU.

const (
	// schedSlice is how long an execution keeps its slot against waiters
	// of its own app (round robin within an app).
	schedSlice = 10 * time.Millisecond
	// staleAfter is how long a slot holder may make no checkpoint before
	// its slot is lent to a waiter.
	staleAfter = 2 * time.Millisecond
	// gosEvery is how many checkpoints pass between two runtime.Gosched
	// calls of a running guest.
	gosEvery = 16
	// demoteAfter is how long an execution holds its slot before its
	// thread's priority is lowered (sched_linux.go).
	demoteAfter = time.Millisecond
)

// errCPUBusy means a request waited for a CPU slot until its deadline.
// It is an errAppBusy (503: retrying later can help).
var errCPUBusy = cpuBusyError{}

type cpuBusyError struct{}

func (cpuBusyError) Error() string        { return "no CPU slot for the guest before its deadline" }
func (cpuBusyError) Is(target error) bool { return target == errAppBusy }

// cpuSched is the host-wide scheduler. The zero value is not usable; a nil
// *cpuSched schedules nothing.
type cpuSched struct {
	slots   int
	waiting atomic.Int32 // len(queue), for checkpoint's fast path

	mu       sync.Mutex
	running  int // holders not lent out
	holders  map[*schedTicket]struct{}
	queue    []*schedTicket
	bursts   int // burst grants outstanding (not counted in running)
	burstMax int
	ticker   *schedTicket         // the one waiter that looks for stale holders
	apps     map[string]*schedApp // active apps (holding or waiting)
	seq      uint64
	epoch    time.Time
	stale    time.Duration // staleAfter (tests set it longer)
	demote   bool          // lower the priority of long-running guests' threads
}

// schedApp is an active app's account.
type schedApp struct {
	name    string
	vtime   int64 // ns of slot time charged
	holding int
	active  int // holding + waiting
}

// schedTicket is one execution's place in the scheduler; it lives in the
// request's callState (reused across requests).
type schedTicket struct {
	s    *cpuSched // nil: not scheduled
	app  *schedApp
	ch   chan struct{}
	seq  uint64 // queue order
	n    uint32 // checkpoints, for gosEvery
	hold bool   // holds a slot (or a lent one)
	low  bool   // its thread's priority is lowered (demote)
	got  bool   // granted while queued
	// burst means it runs on a burst grant: no regular slot was free when
	// it came, and its app held none. It queues at its first checkpoint.
	burst bool
	// kick asks the holder to look at the queue at its next checkpoint
	// (a waiter of another app came).
	kick atomic.Bool
	// lent means its slot was lent to a waiter: it gives it up at its
	// next checkpoint.
	lent atomic.Bool

	since   int64         // when it was last charged (ns since epoch)
	checks  atomic.Uint64 // checkpoints while holding
	seen    uint64        // checks when last looked at by a waiter
	seenAt  int64
	granted int64 // when it got its slot

	leaveFn func() // leave(t), made once
}

func newCPUSched(slots int) *cpuSched {
	if slots < 1 {
		slots = 1
	}
	return &cpuSched{
		slots: slots, burstMax: slots, holders: map[*schedTicket]struct{}{}, apps: map[string]*schedApp{},
		epoch: time.Now(), stale: staleAfter, demote: canDemote(),
	}
}

func (s *cpuSched) now() int64 { return int64(time.Since(s.epoch)) }

// activate returns app's account, creating it charged as much as the least
// charged active app.
func (s *cpuSched) activate(app string) *schedApp {
	a := s.apps[app]
	if a == nil {
		a = &schedApp{name: app}
		first := true
		for _, o := range s.apps {
			if first || o.vtime < a.vtime {
				a.vtime, first = o.vtime, false
			}
		}
		s.apps[app] = a
	}
	a.active++
	return a
}

func (s *cpuSched) deactivate(a *schedApp) {
	a.active--
	if a.active == 0 {
		delete(s.apps, a.name)
	}
}

// better reports whether waiter x goes before waiter y.
func better(x, y *schedTicket) bool {
	if x.app.vtime != y.app.vtime {
		return x.app.vtime < y.app.vtime
	}
	if x.app.holding != y.app.holding {
		return x.app.holding < y.app.holding
	}
	return x.seq < y.seq
}

// best returns the index of the first waiter, or -1.
func (s *cpuSched) best() int {
	b := -1
	for i, t := range s.queue {
		if b < 0 || better(t, s.queue[b]) {
			b = i
		}
	}
	return b
}

// shouldYield is the decision at a checkpoint: does the holder of app
// mine, holding since heldFor, give its slot to waiter w?
func shouldYield(mine *schedApp, heldFor time.Duration, w *schedTicket) bool {
	if w.app == mine {
		return heldFor >= schedSlice
	}
	return w.app.vtime < mine.vtime
}

// charge adds t's slot time since its last charge to its app.
func (s *cpuSched) charge(t *schedTicket, now int64) {
	t.app.vtime += now - t.since
	t.since = now
}

// grantLocked gives a slot to t.
func (s *cpuSched) grantLocked(t *schedTicket, now int64) {
	t.hold = true
	t.lent.Store(false)
	t.kick.Store(false)
	t.since, t.granted, t.seenAt, t.seen = now, now, now, 0
	t.checks.Store(0)
	t.app.holding++
	s.holders[t] = struct{}{}
}

// dropLocked takes t's slot away (t stays active).
func (s *cpuSched) dropLocked(t *schedTicket, now int64) {
	s.charge(t, now)
	t.hold = false
	t.app.holding--
	delete(s.holders, t)
	switch {
	case t.burst:
		t.burst = false
		s.bursts--
	case !t.lent.Swap(false):
		s.running--
	}
}

// passLocked gives free slots to the best waiters.
func (s *cpuSched) passLocked(now int64) {
	for s.running < s.slots && len(s.queue) > 0 {
		i := s.best()
		w := s.queue[i]
		s.removeLocked(i)
		s.running++
		s.grantLocked(w, now)
		w.got = true
		wake(w)
	}
}

func (s *cpuSched) removeLocked(i int) {
	t := s.queue[i]
	last := len(s.queue) - 1
	s.queue[i] = s.queue[last]
	s.queue[last] = nil
	s.queue = s.queue[:last]
	s.waiting.Store(int32(len(s.queue)))
	if s.ticker == t {
		s.ticker = nil
		if len(s.queue) > 0 {
			wake(s.queue[0]) // it takes over the ticker
		}
	}
}

// wake signals t without blocking (t rechecks why it woke).
func wake(t *schedTicket) {
	select {
	case t.ch <- struct{}{}:
	default:
	}
}

// lendStaleLocked lends the slots of holders that made no checkpoint for
// staleAfter to waiters and reports whether it lent any.
func (s *cpuSched) lendStaleLocked(now int64) bool {
	lent := false
	for h := range s.holders {
		if h.burst || h.lent.Load() {
			continue
		}
		if c := h.checks.Load(); c != h.seen {
			h.seen, h.seenAt = c, now
			continue
		}
		if now-h.seenAt >= int64(s.stale) {
			h.lent.Store(true)
			s.running--
			lent = true
		}
	}
	return lent
}

// enter takes a slot for an execution of app, waiting in the queue until
// ctx ends (errCPUBusy).
func (s *cpuSched) enter(ctx context.Context, t *schedTicket, app string) error {
	if t.ch == nil {
		t.ch = make(chan struct{}, 1)
	}
	t.s = s
	s.mu.Lock()
	t.app = s.activate(app)
	now := s.now()
	if s.running < s.slots && len(s.queue) == 0 {
		s.running++
		s.grantLocked(t, now)
		s.mu.Unlock()
		return nil
	}
	if t.app.holding == 0 && s.bursts < s.burstMax {
		// A burst: the app runs nothing now, so it starts at once on
		// the P kept free of guests, until its first checkpoint (at most
		// fuelPerYield checks); a short request never waits for a
		// holder's checkpoint and the hand-over between threads.
		s.bursts++
		s.grantLocked(t, now)
		t.burst = true
		s.mu.Unlock()
		return nil
	}
	if err := s.waitLocked(ctx, t, now); err != nil {
		s.deactivate(t.app)
		s.mu.Unlock()
		t.s = nil
		return errCPUBusy
	}
	s.mu.Unlock()
	return nil
}

// waitLocked queues t and waits for a slot; s.mu is held on entry and on
// return. It fails only when ctx ends first.
func (s *cpuSched) waitLocked(ctx context.Context, t *schedTicket, now int64) error {
	s.seq++
	t.seq, t.got = s.seq, false
	s.queue = append(s.queue, t)
	s.waiting.Store(int32(len(s.queue)))
	for h := range s.holders {
		if h.app != t.app {
			h.kick.Store(true)
		}
	}
	s.passLocked(now)
	var tick *time.Timer
	var tickC <-chan time.Time
	for !t.got {
		if s.ticker == nil || s.ticker == t {
			s.ticker = t
			if tick == nil {
				tick = time.NewTimer(s.stale)
			} else {
				tick.Reset(s.stale)
			}
			tickC = tick.C
		}
		s.mu.Unlock()
		var err error
		select {
		case <-t.ch:
		case <-tickC:
		case <-ctx.Done():
			err = ctx.Err()
		}
		s.mu.Lock()
		if t.got {
			break
		}
		now = s.now()
		if err != nil {
			for i, q := range s.queue {
				if q == t {
					s.removeLocked(i)
					break
				}
			}
			if tick != nil {
				tick.Stop()
			}
			return err
		}
		if s.lendStaleLocked(now) {
			s.passLocked(now)
		}
	}
	if tick != nil {
		tick.Stop()
	}
	select { // the grant's signal, if the timer or ctx won the select
	case <-t.ch:
	default:
	}
	return nil
}

// leave gives t's slot back. It runs on the goroutine that entered.
func (s *cpuSched) leave(t *schedTicket) {
	if t.low {
		undemote()
		t.low = false
	}
	s.mu.Lock()
	now := s.now()
	if t.hold {
		s.dropLocked(t, now)
	}
	s.deactivate(t.app)
	s.passLocked(now)
	s.mu.Unlock()
	t.s, t.app = nil, nil
}

// checkpoint runs at every instrumented yield of a running execution: it
// may hand the slot to a fairer waiter and wait for another, until ctx
// ends (then the guest traps on its interrupt right after).
//
// It takes the scheduler's lock only when it has something to decide: its
// slot was lent, it runs on a burst, a waiter of another app came (kick),
// or, every gosEvery checkpoints, while anyone waits. A holder whose
// thread is demoted must not hold the lock often: the kernel may preempt
// it with the lock held, and the requests entering would wait for it.
func (s *cpuSched) checkpoint(ctx context.Context, t *schedTicket) {
	t.checks.Add(1)
	t.n++
	tick := t.n%gosEvery == 0
	if t.hold && (t.burst || t.lent.Load() || t.kick.Load() || (tick && s.waiting.Load() > 0)) {
		s.reschedule(ctx, t)
	}
	if tick {
		s.tick(t)
	}
}

// reschedule is checkpoint's decision under the lock.
func (s *cpuSched) reschedule(ctx context.Context, t *schedTicket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.charge(t, now)
	t.kick.Store(false)
	if t.burst && s.running < s.slots {
		// A regular slot is free: the burst becomes it.
		t.burst = false
		s.bursts--
		s.running++
		return
	}
	yield := t.burst || t.lent.Load()
	if !yield {
		if i := s.best(); i >= 0 {
			yield = shouldYield(t.app, time.Duration(now-t.granted), s.queue[i])
		}
	}
	if !yield {
		return
	}
	s.dropLocked(t, now)
	if s.waitLocked(ctx, t, now) != nil {
		// The context ended: let the guest reach its trap; it counts
		// as holding nothing.
		s.passLocked(now)
	}
}

// tick runs every gosEvery checkpoints: it demotes a guest that has held
// its slot for demoteAfter and lets other goroutines have the P.
func (s *cpuSched) tick(t *schedTicket) {
	if s.demote && !t.low && t.hold && s.now()-t.granted >= int64(demoteAfter) {
		t.low = demote()
	}
	runtime.Gosched()
}

// cpuSlots returns the scheduler of opts (nil: off).
func cpuSlots(opts Options) *cpuSched {
	switch {
	case opts.CPUSlots < 0:
		return nil
	case opts.CPUSlots == 0:
		return newCPUSched(max(1, runtime.GOMAXPROCS(0)-1))
	}
	return newCPUSched(opts.CPUSlots)
}

// enterCPU takes a CPU slot for the execution of cs (a no-op without a
// scheduler); the returned function gives it back.
func (c *component) enterCPU(ctx context.Context) (func(), error) {
	s := c.rt.sched
	cs, ok := ctx.(*callState)
	if s == nil || !ok {
		return func() {}, nil
	}
	t := &cs.sched
	if err := s.enter(ctx, t, c.app); err != nil {
		return nil, err
	}
	if t.leaveFn == nil { // kept across uses of the callState
		t.leaveFn = func() { t.s.leave(t) }
	}
	return t.leaveFn, nil
}

// schedListener is the function listener of an instrumented module's
// yield function: a checkpoint of the request's execution.
type schedListener struct{}

func (schedListener) Before(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	if cs, ok := ctx.(*callState); ok {
		if t := &cs.sched; t.s != nil {
			t.s.checkpoint(ctx, t)
		}
	}
}

func (schedListener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}

func (schedListener) Abort(context.Context, api.Module, api.FunctionDefinition, error) {}

// schedFactory gives the listener to the function at index yield only.
type schedFactory struct{ yield uint32 }

func (f schedFactory) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if def.Index() == f.yield {
		return schedListener{}
	}
	return nil
}

// schedCompileContext returns ctx with the listener factory for the
// instrumented module wasm (its last function is yield), or ctx itself
// without a scheduler.
func (r *Runtime) schedCompileContext(ctx context.Context, wasm []byte) context.Context {
	if r.sched == nil {
		return ctx
	}
	yield, ok := lastFunction(wasm)
	if !ok {
		return ctx
	}
	return experimental.WithFunctionListenerFactory(ctx, schedFactory{yield: yield})
}

// lastFunction returns the index of the last function of a module that
// instrument wrote.
func lastFunction(wasm []byte) (uint32, bool) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return 0, false
	}
	imported, defined, err := m.FunctionCount()
	if err != nil || defined == 0 {
		return 0, false
	}
	return imported + defined - 1, true
}
