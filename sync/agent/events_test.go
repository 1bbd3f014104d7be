package agent

import (
	"sync"
	"testing"
	"time"
)

func TestBusSlowSubscriberGetsResync(t *testing.T) {
	var b Bus
	fast, slow := b.Subscribe(100), b.Subscribe(2)
	defer fast.Close()
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			b.Publish(Event{Kind: EventRoundStarted, Round: uint64(i + 1)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber nobody reads")
	}
	for i := range 10 {
		if e := <-fast.C; e.Round != uint64(i+1) {
			t.Fatalf("fast subscriber got round %d at %d", e.Round, i)
		}
	}
	var got []Event
	for len(slow.C) > 0 {
		got = append(got, <-slow.C)
	}
	if len(got) != 2 || got[len(got)-1].Kind != EventResync {
		t.Fatalf("slow subscriber got %+v, want its queue ending with a resync", got)
	}
	slow.Close()
	slow.Close()
	if n := b.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after Close, want 1", n)
	}
}

// TestBusHammer publishes and subscribes from many goroutines (run with
// -race): every reader that kept up sees every event in order.
func TestBusHammer(t *testing.T) {
	var b Bus
	const n = 2000
	var wg sync.WaitGroup
	subs := make([]*Subscription, 8)
	for i := range subs {
		subs[i] = b.Subscribe(n + 4*50)
	}
	for range 4 {
		wg.Go(func() {
			for range 50 {
				s := b.Subscribe(1)
				b.Publish(Event{Kind: EventDevice})
				s.Close()
			}
		})
	}
	wg.Go(func() {
		for i := range n {
			b.Publish(Event{Kind: EventAppChanged, Round: uint64(i)})
		}
	})
	wg.Wait()
	for _, s := range subs {
		last := -1
		for len(s.C) > 0 {
			e := <-s.C
			if e.Kind == EventAppChanged {
				if int(e.Round) <= last {
					t.Fatalf("out of order: %d after %d", e.Round, last)
				}
				last = int(e.Round)
			}
		}
		if last != n-1 {
			t.Fatalf("a subscriber saw up to %d, want %d", last, n-1)
		}
	}
}
