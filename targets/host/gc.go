package host

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
)

// Deploys and garbage collection.
//
// Compiling a module allocates far more than it keeps: wazero's compiler
// leaves about 300 KB of garbage for a WAT module of a few hundred bytes,
// tens of megabytes for a Go guest. During a mass deploy that keeps the Go
// collector busy most of the time (10,000 tiny apps on 2 cores: a cycle
// every ~70 deploys, each marking for ~20 ms, then sweeping), and its
// background mark workers and sweeper hold the cores that a request's
// goroutines wait for: while they run, netpoll is not even looked at until
// one yields. First requests sent right after a deploy waited 1 to 6 ms for
// them.
//
// So Deploy finishes the collection its garbage made due before it
// returns: when the heap has used gcDueTenths tenths of its way from the live
// heap of the last cycle to the next goal (the Go pacer starts a cycle at
// no less than 0.7 of it), Deploy runs the cycle itself with runtime.GC,
// which also sweeps before it returns. The collection then happens while
// the deploy waits, not beside the requests that follow it. The total work
// of the collector stays about the same (one cycle a bit earlier than the
// pacer would start it); the deploys that run one take ~20 ms longer.
// Options.NoDeployGC turns this off.

// gcDueTenths is the share of the way from the live heap to the heap goal,
// in tenths, past which Deploy collects.
const gcDueTenths = 6

// gcDue reports whether a heap of objs bytes, whose last cycle left live
// bytes and whose goal is goal bytes, is far enough along to collect now.
func gcDue(live, goal, objs uint64) bool {
	if goal <= live || objs <= live {
		return false
	}
	return objs-live >= (goal-live)/10*gcDueTenths
}

// heapState returns the live heap after the last cycle, the heap goal and
// the bytes of heap objects now (live and not yet swept).
func heapState() (live, goal, objs uint64) {
	s := [3]rtmetrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	rtmetrics.Read(s[:])
	for i := range s {
		if s[i].Value.Kind() != rtmetrics.KindUint64 {
			return 0, 0, 0
		}
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
}

// collecting is set while a Deploy runs a collection: the collector is
// process-wide, so concurrent deploys (of any Runtime) run one cycle, not
// one each.
var collecting atomic.Bool

// Hooks replaced by tests.
var (
	readHeap = heapState
	runGC    = runtime.GC
)

// collectIfDue runs a garbage collection when the heap is close to its next
// one (see above) and reports whether it did.
func (r *Runtime) collectIfDue() bool {
	if r.opts.NoDeployGC || !gcDue(readHeap()) {
		return false
	}
	if !collecting.CompareAndSwap(false, true) {
		return false
	}
	defer collecting.Store(false)
	runGC()
	r.metrics.deployGCs.Inc()
	return true
}

// DefaultGCBallast is the heap ballast of Options.GCBallast: 32 MiB.
const DefaultGCBallast = 32 << 20

// The heap ballast.
//
// A WAGI request allocates about 14 KB that wazero does not let the host
// reuse (10 KB of them the call stack of each new instance). With a small
// live heap (a host with a few apps has a few megabytes) the Go collector,
// which starts a cycle each time the heap doubles, then runs every ~150
// requests, and each cycle costs about a millisecond of CPU: measured, 35%
// of the runtime's cost per request. The ballast is a byte slice the
// collector counts as live heap but that nothing ever writes, so its pages
// are never touched and cost no RSS: the heap goal starts from it instead of
// from a few megabytes, and the collector runs every ~ballast bytes
// allocated. What it costs is that much more garbage between two cycles,
// and it counts against GOMEMLIMIT like any heap. When the live heap is much
// larger than the ballast it changes little.

var ballast struct {
	mu sync.Mutex
	b  []byte
}

// ensureBallast makes the process-wide ballast at least n bytes. It is kept
// for the life of the process (freeing and allocating it again would have
// the allocator zero, and so touch, reused pages).
func ensureBallast(n int64) {
	if n <= 0 {
		return
	}
	ballast.mu.Lock()
	defer ballast.mu.Unlock()
	if int64(len(ballast.b)) < n {
		ballast.b = make([]byte, n)
	}
}

// ballastSize returns the size of the process-wide ballast.
func ballastSize() int64 {
	ballast.mu.Lock()
	defer ballast.mu.Unlock()
	return int64(len(ballast.b))
}
