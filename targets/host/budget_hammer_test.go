package host

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestMemBudgetHammer: many goroutines acquiring and releasing sizes under a
// small budget, some giving up after a short wait, some with contexts that
// end: the reservation never passes the budget and ends at zero. Run it
// with -race.
func TestMemBudgetHammer(t *testing.T) {
	m := newMetrics(nil)
	b := &memBudget{max: 100}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	over := make(chan int64, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := b.reserved(); n > b.max || n < 0 {
				select {
				case over <- n:
				default:
				}
			}
		}
	}()
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				n := int64(1 + r.IntN(60))
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(300))*time.Microsecond)
				if b.acquire(ctx, n, time.Duration(r.IntN(500))*time.Microsecond, m) == nil {
					time.Sleep(time.Duration(r.IntN(100)) * time.Microsecond)
					b.release(n, m)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(stop)
	select {
	case n := <-over:
		t.Errorf("reserved %d with a budget of %d", n, b.max)
	default:
	}
	if n := b.reserved(); n != 0 {
		t.Errorf("reserved %d after every release", n)
	}
	if len(b.waiters) != 0 {
		t.Errorf("%d waiters left", len(b.waiters))
	}
}
