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

// collectRound reads s until the end of a round and returns the events.
func collectRound(t *testing.T, s *Subscription) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-s.C:
			got = append(got, e)
			if e.Kind == EventRoundFinished {
				return got
			}
		case <-timeout:
			t.Fatalf("no round finished within 30s; events %+v", got)
		}
	}
}

// TestAgentEvents: a subscriber sees each round start and end, and an
// app.changed for exactly the apps whose digest, phase or health changed;
// the round records the commit's author and subject.
func TestAgentEvents(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.agent.Subscribe(0)
	defer sub.Close()
	h.start()
	first := collectRound(t, sub)
	kinds := map[EventKind]int{}
	changed := map[string]string{}
	for _, e := range first {
		kinds[e.Kind]++
		if e.Kind == EventAppChanged {
			changed[e.App+"@"+e.Target] = e.Digest
		}
	}
	if first[0].Kind != EventRoundStarted || first[0].Round == 0 || first[0].Trigger != "start" {
		t.Errorf("first event %+v, want the round's start", first[0])
	}
	if last := first[len(first)-1]; last.Result != "succeeded" || last.Commit == "" {
		t.Errorf("last event %+v, want a succeeded round with its commit", last)
	}
	if changed["a@local"] != appDigest("a", "v1") || changed["b@local"] != appDigest("b", "v1") || len(changed) != 2 {
		t.Errorf("app changes of the first round %v", changed)
	}

	c2 := h.push("a v2: a new greeting", "v2", "v1")
	h.agent.Sync()
	var second []Event
	for {
		second = collectRound(t, sub)
		if second[len(second)-1].Commit == c2 {
			break
		}
	}
	changed = map[string]string{}
	for _, e := range second {
		if e.Kind == EventAppChanged {
			changed[e.App+"@"+e.Target] = e.Digest
		}
	}
	if len(changed) != 1 || changed["a@local"] != appDigest("a", "v2") {
		t.Errorf("app changes of the second round %v, want only a at v2", changed)
	}
	rs, err := h.agent.Rounds(1)
	if err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	if rs[0].Message != "a v2: a new greeting" || rs[0].Author == "" {
		t.Errorf("round records author %q, message %q", rs[0].Author, rs[0].Message)
	}
}
