package host

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// callKey is the context key of the *callState of a guest call.
type callKey struct{}

// callState is everything a guest call (one request, or a reactor's
// _initialize) can reach through host functions. Pooled.
type callState struct {
	comp *component
	ctx  context.Context // what host functions pass on (the callState itself during a request)

	// env and args are NUL-terminated strings, served by the WASI
	// environ_*/args_* functions.
	env   []byte
	envN  int
	args  []byte
	argsN int
	body  bytes.Reader // request body (WAGI stdin, reactor req_body_read)
	bodyB []byte
	out   limitBuf // WAGI stdout, or the reactor's response body

	// mt is the request's route match, and mparams the backing array of
	// its parameters (kept here so that routing allocates nothing).
	mt      match
	mparams [4]string

	// reactor exchange
	req     *http.Request
	m       *match
	head    []byte
	status  int
	hdr     []byte // response head lines as given by resp_start
	started bool

	outbound []*http.Response

	// wagiCfg is wagiComp's module config with stdin and stdout bound to
	// this callState's body and out, kept across uses of the pooled
	// callState so that a request does not clone the config twice.
	wagiComp *component
	wagiCfg  wazero.ModuleConfig

	// intrG is the interrupt global of the instrumented instance that
	// startInstance runs, and fireFn sets it (kept across uses).
	intrG  api.MutableGlobal
	fireFn func()

	// The request's context (callState implements context.Context, so a
	// request allocates no context chain, timer or goroutine): begin
	// arms it, end ends it once, finish disarms it. Kept across uses:
	// the timers, the signalling channels and the method values.
	//
	// The parent (the client's request) is watched only once the call has
	// run for parentWatchDelay (watchTimer), so that the many short calls
	// do not register with it (context.AfterFunc allocates five objects).
	parent     context.Context
	deadline   time.Time
	mu         sync.Mutex
	done       chan struct{} // made on demand
	err        error
	interrupt  func() // stops the running guest; called once on end
	stopParent func() bool
	timer      *time.Timer
	timerDone  chan struct{} // a fired timer's callback has finished
	watchTimer *time.Timer
	watchArmed bool
	watchDone  chan struct{} // a fired watchTimer's callback has finished
	parentDone chan struct{} // a started parent callback has finished
	expireFn   func()
	watchFn    func()
	parentFn   func()
	cancelFn   func()

	// octx is the context of outbound requests, which the HTTP transport
	// may hold past the call (so not the pooled callState).
	octx    context.Context
	ocancel context.CancelFunc

	// endedFlag is set when the context ends, for host calls to check
	// without a lock (trapIfEnded); initCtx is the context of a reactor's
	// _initialize, which runs outside a request.
	endedFlag atomic.Bool
	initCtx   context.Context
	// glog is what the call logged and dropped (see guestlog.go).
	glog guestLog
	// runIdx is the call's place in its component's running set.
	runIdx int
	// sched is the call's place in the CPU scheduler (sched.go).
	sched schedTicket

	// ref (naming this callState), errW, rnd and sleepF are the WAGI
	// guest's stderr, random source and nanosleep, bound into wagiCfg.
	// Kept across uses.
	ref    callRef
	errW   guestStream
	rnd    guestRand
	sleepF func(int64)
}

// memCtx carries the pooled memory allocator (experimental.WithMemoryAllocator
// keys it with an internal type, so callState.Value asks it).
var memCtx = experimental.WithMemoryAllocator(context.Background(), memAllocator{})

// parentWatchDelay is how long a call runs before its context starts
// following the parent's (the client going away): a guest still running
// then is interrupted at most this much later than the client left.
const parentWatchDelay = 5 * time.Millisecond

// begin starts the request's context: it ends at the deadline, or when
// parent ends (noticed once the call has run for parentWatchDelay).
func (cs *callState) begin(parent context.Context, timeout time.Duration) {
	if cs.timerDone == nil {
		cs.timerDone = make(chan struct{}, 1)
		cs.watchDone = make(chan struct{}, 1)
		cs.parentDone = make(chan struct{}, 1)
		cs.expireFn = func() {
			cs.end(context.DeadlineExceeded)
			cs.timerDone <- struct{}{}
		}
		cs.watchFn = func() {
			cs.watchParent()
			cs.watchDone <- struct{}{}
		}
		cs.parentFn = func() {
			cs.end(context.Cause(cs.parent))
			cs.parentDone <- struct{}{}
		}
		cs.cancelFn = func() { cs.end(context.Canceled) }
	}
	cs.parent, cs.ctx = parent, cs
	if cs.comp != nil {
		cs.comp.running.add(cs)
	}
	cs.deadline = time.Now().Add(timeout)
	if d, ok := parent.Deadline(); ok && d.Before(cs.deadline) {
		cs.deadline = d
	}
	left := time.Until(cs.deadline)
	if cs.timer == nil {
		cs.timer = time.AfterFunc(left, cs.expireFn)
	} else {
		cs.timer.Reset(left)
	}
	cs.watchArmed = left > parentWatchDelay
	switch {
	case !cs.watchArmed:
		cs.watchParent()
	case cs.watchTimer == nil:
		cs.watchTimer = time.AfterFunc(parentWatchDelay, cs.watchFn)
	default:
		cs.watchTimer.Reset(parentWatchDelay)
	}
}

// watchParent makes the context end when its parent does. It runs once per
// call: from begin, or from the watch timer's callback.
func (cs *callState) watchParent() {
	if cs.parent.Done() != nil {
		cs.stopParent = context.AfterFunc(cs.parent, cs.parentFn)
	}
}

// finish disarms the context, waiting for a callback that already started,
// so that the callState can be reused.
func (cs *callState) finish() {
	if cs.comp != nil {
		cs.comp.running.remove(cs)
	}
	if !cs.timer.Stop() {
		<-cs.timerDone
	}
	// After the watch timer is stopped or its callback has finished,
	// stopParent is settled.
	if cs.watchArmed && !cs.watchTimer.Stop() {
		<-cs.watchDone
	}
	if cs.stopParent != nil && !cs.stopParent() {
		<-cs.parentDone
	}
}

// end ends the context with err (the first call wins) and interrupts the
// running guest.
func (cs *callState) end(err error) {
	cs.mu.Lock()
	if cs.err != nil {
		cs.mu.Unlock()
		return
	}
	if err == nil {
		err = context.Canceled
	}
	cs.err = err
	cs.endedFlag.Store(true)
	if cs.done != nil {
		close(cs.done)
	}
	f := cs.interrupt
	cs.mu.Unlock()
	if f != nil {
		f()
	}
}

// setInterrupt makes f stop the guest when the context ends (at once if it
// has ended already).
func (cs *callState) setInterrupt(f func()) {
	cs.mu.Lock()
	ended := cs.err != nil
	if !ended {
		cs.interrupt = f
	}
	cs.mu.Unlock()
	if ended {
		f()
	}
}

// clearInterrupt forgets the interrupt and reports whether the context
// ended meanwhile (then the guest may have been interrupted and its
// instance must not be reused).
func (cs *callState) clearInterrupt() (ended bool) {
	cs.mu.Lock()
	cs.interrupt = nil
	ended = cs.err != nil
	cs.mu.Unlock()
	return ended
}

// safeContext returns a plain context for a call on a safe engine, whose
// watchdog goroutine may outlive the call and so must not hold the pooled
// callState: it ends at the deadline or when cs ends. Call cancel after the
// call.
func (cs *callState) safeContext() (context.Context, context.CancelFunc) {
	ctx := context.WithValue(experimental.WithMemoryAllocator(cs.parent, memAllocator{}), callKey{}, cs)
	ctx, stop := context.WithDeadline(ctx, cs.deadline)
	cs.setInterrupt(stop)
	return ctx, func() {
		cs.clearInterrupt()
		stop()
	}
}

// outboundContext returns the context for the call's outbound requests:
// the request's parent and deadline, in a context that is not recycled. Under
// _initialize (no request) it is ctx.
func (cs *callState) outboundContext(ctx context.Context) context.Context {
	if cs.parent == nil {
		return ctx
	}
	if cs.octx == nil {
		cs.octx, cs.ocancel = context.WithDeadline(cs.parent, cs.deadline)
	}
	return cs.octx
}

// Deadline implements context.Context.
func (cs *callState) Deadline() (time.Time, bool) { return cs.deadline, true }

// Done implements context.Context.
func (cs *callState) Done() <-chan struct{} {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.done == nil {
		cs.done = make(chan struct{})
		if cs.err != nil {
			close(cs.done)
		}
	}
	return cs.done
}

// Err implements context.Context.
func (cs *callState) Err() error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.err
}

// Value implements context.Context: the callState itself, the memory
// allocator, then the parent's values.
func (cs *callState) Value(k any) any {
	if _, ok := k.(callKey); ok {
		return cs
	}
	if v := memCtx.Value(k); v != nil {
		return v
	}
	if cs.parent == nil {
		return nil
	}
	return cs.parent.Value(k)
}

var callPool = sync.Pool{New: func() any { return new(callState) }}

func getCall(c *component) *callState {
	cs := callPool.Get().(*callState)
	cs.comp = c
	return cs
}

func putCall(cs *callState) {
	cs.noteDropped()
	for _, resp := range cs.outbound {
		resp.Body.Close()
	}
	clear(cs.outbound)
	cs.outbound = cs.outbound[:0]
	if cs.ocancel != nil {
		cs.ocancel()
	}
	if cap(cs.out.b) > 1<<20 {
		cs.out.b = nil
	}
	if cap(cs.bodyB) > 1<<20 {
		cs.bodyB = nil
	}
	cs.reset()
	callPool.Put(cs)
}

// reset clears cs for reuse, keeping its buffers and its context's timer,
// channels and callbacks.
func (cs *callState) reset() {
	*cs = callState{
		env: cs.env[:0], args: cs.args[:0], out: limitBuf{b: cs.out.b[:0]},
		bodyB: cs.bodyB[:0], head: cs.head[:0], hdr: cs.hdr[:0], outbound: cs.outbound,
		wagiComp: cs.wagiComp, wagiCfg: cs.wagiCfg, fireFn: cs.fireFn,
		timer: cs.timer, timerDone: cs.timerDone, parentDone: cs.parentDone,
		watchTimer: cs.watchTimer, watchDone: cs.watchDone,
		expireFn: cs.expireFn, watchFn: cs.watchFn, parentFn: cs.parentFn, cancelFn: cs.cancelFn,
		ref: cs.ref, errW: cs.errW, rnd: cs.rnd, sleepF: cs.sleepF,
	}
}

// bindIO makes ref, errW, rnd and sleepF name cs (once per callState).
func (cs *callState) bindIO() {
	if cs.sleepF == nil {
		cs.ref.cs = cs
		cs.errW = guestStream{ref: &cs.ref, stream: "stderr"}
		cs.rnd = guestRand{ref: &cs.ref}
		cs.sleepF = cs.ref.sleepFn()
	}
}

func (cs *callState) addEnv(k, v string) {
	cs.env = append(cs.env, k...)
	cs.env = append(cs.env, '=')
	cs.env = append(cs.env, v...)
	cs.env = append(cs.env, 0)
	cs.envN++
}

// addEnvName appends "<prefix><NAME>=" for a header or parameter name:
// upper-cased, '-' mapped to '_'; the caller appends the value
// and ends the entry with endEnv.
func (cs *callState) addEnvName(prefix, name string) {
	cs.env = append(cs.env, prefix...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			c -= 32
		case c == '-':
			c = '_'
		}
		cs.env = append(cs.env, c)
	}
	cs.env = append(cs.env, '=')
}

func (cs *callState) endEnv() {
	cs.env = append(cs.env, 0)
	cs.envN++
}

func (cs *callState) addArg(a string) {
	cs.args = append(cs.args, a...)
	cs.args = append(cs.args, 0)
	cs.argsN++
}

// limitBuf buffers up to max bytes; a write past it fails, marks overflow
// and cancels the call so the guest stops promptly.
type limitBuf struct {
	b        []byte
	max      int64
	overflow bool
	cancel   context.CancelFunc
}

func (l *limitBuf) Write(p []byte) (int, error) {
	if int64(len(l.b))+int64(len(p)) > l.max {
		l.overflow = true
		if l.cancel != nil {
			l.cancel()
		}
		return 0, errTooLarge
	}
	if need := len(l.b) + len(p); need > cap(l.b) {
		// Double (append grows large slices by 1.25x, which allocates
		// several times the cap on the way up), never past max.
		c := min(max(2*cap(l.b), need, 4096), int(l.max))
		nb := make([]byte, len(l.b), c)
		copy(nb, l.b)
		l.b = nb
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

type tooLargeError struct{}

func (tooLargeError) Error() string { return "response too large" }

var errTooLarge error = tooLargeError{}

func callFrom(ctx context.Context) *callState {
	cs, _ := ctx.Value(callKey{}).(*callState)
	return cs
}
