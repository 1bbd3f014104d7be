package host

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestCallStateWatchesParentLate: the parent is followed only once a call
// has run for parentWatchDelay (or at once when the deadline is sooner);
// either way a parent that ends ends the call and fires its interrupt, and
// a call that finished first is not touched.
func TestCallStateWatchesParentLate(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		cancelFirst bool // the parent ends before the call begins
		finishEarly bool // the call finishes before the watch starts
		want        error
	}{
		{"long call, parent ends", time.Hour, false, false, context.Canceled},
		{"long call, parent ended already", time.Hour, true, false, context.Canceled},
		{"short deadline, parent ended already", parentWatchDelay / 2, true, false, context.Canceled},
		{"short call, parent ends after it", time.Hour, false, true, nil},
	}
	cs := getCall(nil)
	defer putCall(cs)
	for _, tt := range tests { // one pooled callState, reused
		t.Run(tt.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.Background())
			defer cancelParent()
			if tt.cancelFirst {
				cancelParent()
			}
			cs.begin(parent, tt.timeout)
			var fired atomic.Int32
			cs.setInterrupt(func() { fired.Add(1) })
			if tt.finishEarly {
				ended := cs.clearInterrupt()
				cs.finish()
				cancelParent()
				time.Sleep(2 * parentWatchDelay) // a stray watch would fire now
				if ended || cs.Err() != nil || fired.Load() != 0 {
					t.Errorf("finished call: ended %v, err %v, interrupt fired %d times", ended, cs.Err(), fired.Load())
				}
				cs.reset()
				return
			}
			cancelParent()
			select {
			case <-cs.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the call did not end with its parent")
			}
			if !errors.Is(cs.Err(), tt.want) {
				t.Errorf("err %v, want %v", cs.Err(), tt.want)
			}
			// Done closes before end calls the interrupt (on the parent's
			// callback goroutine); finish waits for that callback, so the
			// count is settled only after it.
			ended := cs.clearInterrupt()
			cs.finish()
			if !ended || fired.Load() != 1 {
				t.Errorf("ended %v, interrupt fired %d times", ended, fired.Load())
			}
			cs.reset()
		})
	}
}

// TestCallStateFinishRacesWatch finishes calls around the moment their
// parent watch starts, with parents ending around it too; run it with
// -race. A leftover callback or token would end or block a later call.
func TestCallStateFinishRacesWatch(t *testing.T) {
	cs := getCall(nil)
	defer putCall(cs)
	for i := range 60 {
		parent, cancelParent := context.WithCancel(context.Background())
		cs.begin(parent, time.Hour)
		if cs.Err() != nil {
			t.Fatalf("call %d began ended: %v", i, cs.Err())
		}
		d := parentWatchDelay * time.Duration(i%5) / 3
		if i%2 == 0 {
			time.AfterFunc(d, cancelParent)
		}
		time.Sleep(d)
		cs.finish()
		cancelParent()
		cs.reset()
	}
}
