package host

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// The host memory budget (Options.MemoryBudget).
//
// Every instance reserves its component's memory limit (its maximum linear
// memory, in whole pages) before it is instantiated, and gives it back when
// it is closed: a WAGI instance for its request, a pooled reactor instance
// for its life in the pool. So the linear memory of all guests together can
// never pass the budget, whatever they grow to. A request that finds the
// budget full waits, first come first served, up to Options.MemoryWait (and
// never past its deadline), then answers 503 with budgetBody.

// DefaultMemoryWait is how long a request waits for room in the memory
// budget before it answers 503: 1 s.
const DefaultMemoryWait = time.Second

// budgetBody is the body of the 503 of a request refused for the budget.
const budgetBody = "503 service unavailable: the host's memory budget is full; retry later\n"

// errMemoryBudget means an instance found no room in the memory budget
// within its wait. Retrying later can help.
var errMemoryBudget = errors.New("host memory budget full")

// memBudget is a first-come-first-served semaphore of bytes. The zero max
// means unlimited. Safe for concurrent use.
type memBudget struct {
	max int64

	mu      sync.Mutex
	used    int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when granted
	done  bool          // granted (under mu)
}

// acquire reserves n bytes, waiting up to wait or until ctx ends.
func (b *memBudget) acquire(ctx context.Context, n int64, wait time.Duration, m *metrics) error {
	if b == nil || b.max <= 0 {
		return nil
	}
	if n > b.max {
		m.budgetRefused.Inc()
		return errors.New("instance memory limit " + strconv.FormatInt(n, 10) + " bytes is over the host memory budget")
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.max {
		b.used += n
		b.mu.Unlock()
		m.budgetReserved.Add(float64(n))
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	m.budgetWaits.Inc()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		m.budgetReserved.Add(float64(n))
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	b.mu.Lock()
	if w.done { // granted meanwhile
		b.mu.Unlock()
		m.budgetReserved.Add(float64(n))
		return nil
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	b.grantLocked() // a large waiter leaving may let smaller ones in
	b.mu.Unlock()
	m.budgetRefused.Inc()
	return errMemoryBudget
}

// release gives back n bytes.
func (b *memBudget) release(n int64, m *metrics) {
	if b == nil || b.max <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	b.mu.Unlock()
	m.budgetReserved.Sub(float64(n))
}

// grantLocked admits waiters in order while they fit.
func (b *memBudget) grantLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.used+w.n > b.max {
			return
		}
		b.used += w.n
		w.done = true
		close(w.ready)
		b.waiters = b.waiters[1:]
	}
}

// reserved returns the bytes reserved now.
func (b *memBudget) reserved() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// memBytes is what an instance of c reserves: its engine's memory limit.
func (c *component) memBytes() int64 { return int64(c.eng.pages) * 65536 }

// reserveMem reserves an instance's memory in the runtime's budget for a
// call with context ctx.
func (c *component) reserveMem(ctx context.Context) error {
	r := c.rt
	if r.budget.max <= 0 {
		return nil
	}
	return r.budget.acquire(ctx, c.memBytes(), r.opts.MemoryWait, r.metrics)
}

// releaseMem gives an instance's reservation back.
func (c *component) releaseMem() { c.rt.budget.release(c.memBytes(), c.rt.metrics) }
