package host

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Stopping running guests when their app is deleted or the runtime closes.
//
// A deleted app's in-flight requests get Options.StopGrace to finish; then
// their guests are interrupted (they trap at their next check or host call)
// and the requests answer 503. Close does the same when its context ends.

// DefaultStopGrace is how long a deleted app's in-flight requests may run
// before their guests are stopped: 5 s.
const DefaultStopGrace = 5 * time.Second

// errGuestStopped ends the context of a request whose guest was stopped
// because its app was deleted or the runtime is closing.
var errGuestStopped = errors.New("guest stopped: its app was deleted or the host is shutting down")

// stopDrainWait is how long Close waits, after interrupting the guests still
// running, for their requests to return before it releases the engines.
const stopDrainWait = 2 * time.Second

// runSet is the set of a component's running calls. Safe for concurrent
// use; add and remove are O(1).
type runSet struct {
	mu      sync.Mutex
	calls   []*callState
	stopped error // set by stop: calls added later end at once
}

// add registers cs (from begin).
func (s *runSet) add(cs *callState) {
	s.mu.Lock()
	cs.runIdx = len(s.calls)
	s.calls = append(s.calls, cs)
	stopped := s.stopped
	s.mu.Unlock()
	if stopped != nil {
		cs.end(stopped)
	}
}

// remove unregisters cs (from finish).
func (s *runSet) remove(cs *callState) {
	s.mu.Lock()
	last := len(s.calls) - 1
	if i := cs.runIdx; i >= 0 && i <= last && s.calls[i] == cs {
		s.calls[i] = s.calls[last]
		s.calls[i].runIdx = i
		s.calls[last] = nil
		s.calls = s.calls[:last]
	}
	cs.runIdx = -1
	s.mu.Unlock()
}

// stop ends every running call with err, and every call added later. It
// returns how many were running.
func (s *runSet) stop(err error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = err
	for _, cs := range s.calls {
		// end does not take s.mu; the call cannot finish (and be
		// reused) while it is in the set, since remove waits for s.mu.
		cs.end(err)
	}
	return len(s.calls)
}

// stop interrupts the version's running guests.
func (v *version) stop(why string) {
	n := 0
	for _, c := range v.comps {
		n += c.running.stop(errGuestStopped)
	}
	if n > 0 {
		v.rt.log.LogAttrs(context.Background(), slog.LevelWarn, "stopping guests still running: "+why,
			slog.String("app", v.app.Name), slog.Uint64("generation", v.gen), slog.Int("requests", n))
	}
}

// retireWithin retires v (see retire) and stops its guests if it has not
// drained after grace.
func (r *Runtime) retireWithin(v *version, grace time.Duration) {
	r.retire(v)
	if v.closed.Load() {
		return
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		t := time.NewTimer(grace)
		defer t.Stop()
		for v.inflight.Load() != 0 {
			select {
			case <-t.C:
				v.stop("the app was deleted " + grace.String() + " ago")
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
}
