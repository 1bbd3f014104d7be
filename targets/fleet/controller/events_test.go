package controller

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// eventLog records OnEvent calls.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }

func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		out = append(out, string(e.Kind)+" "+e.App+" "+e.To)
	}
	return out
}

func withEvents(u *unit, l *eventLog) {
	ctl, err := New(Options{Name: "edge", Fleet: u.policy, Server: u.srv, Dir: u.ctlDir, Now: u.clk.Now, OnEvent: l.add})
	if err != nil {
		u.t.Fatal(err)
	}
	u.ctl = ctl
}

// TestEventsStartCompleteAbort: each outcome change is told once, with
// the rollout's digests, reason and device counts; steps that change
// nothing tell nothing.
func TestEventsStartCompleteAbort(t *testing.T) {
	u := newUnit(t, twoWaves())
	l := &eventLog{}
	withEvents(u, l)
	u.enroll(4, nil)
	ctx := context.Background()
	if _, err := u.ctl.Put(ctx, want(v1)); err != nil {
		t.Fatal(err)
	}
	u.ctl.Put(ctx, want(v1)) // the same digest again: no new rollout
	for range 5 {
		u.ctl.StepAll()
		u.reportAll(true)
	}
	u.ctl.StepAll()
	u.ctl.Put(ctx, want(v2))
	u.ctl.StepAll()
	if err := u.ctl.Abort(app, "stopped by the on-call"); err != nil {
		t.Fatal(err)
	}
	u.ctl.Abort(app, "again") // finished: nothing
	wantEvents := []string{"started " + app + " " + v1, "completed " + app + " " + v1, "started " + app + " " + v2, "aborted " + app + " " + v2}
	if diff := cmp.Diff(wantEvents, l.kinds()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	done, started2, aborted := l.evs[1], l.evs[2], l.evs[3]
	if done.Target != "edge" || done.Devices != 4 || done.Counts.Healthy != 4 {
		t.Errorf("completed: %+v", done)
	}
	if started2.From != v1 || started2.To != v2 {
		t.Errorf("second start: %+v", started2)
	}
	if aborted.Reason != "stopped by the on-call" || aborted.Devices == 0 || aborted.Counts.RolledBack != aborted.Devices {
		t.Errorf("aborted: %+v", aborted)
	}
	if !slices.IsSortedFunc(l.evs, func(a, b Event) int { return a.Time.Compare(b.Time) }) {
		t.Error("event times go backwards")
	}
}

// TestEventsAbortByEngine: the engine's abort rule (too many failed
// devices) is told with its reason.
func TestEventsAbortByEngine(t *testing.T) {
	p := twoWaves()
	p.Rollout.Abort.MinSample = 1
	u := newUnit(t, p)
	l := &eventLog{}
	withEvents(u, l)
	u.enroll(4, nil)
	u.ctl.Put(context.Background(), want(v1))
	u.ctl.StepAll()
	u.reportAll(false)
	u.ctl.StepAll()
	got := l.kinds()
	if len(got) != 2 || got[1] != "aborted "+app+" "+v1 {
		t.Fatalf("events %v", got)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.evs[1]; e.Reason == "" || e.Counts.Failed+e.Counts.RolledBack == 0 {
		t.Errorf("aborted: %+v", e)
	}
}
