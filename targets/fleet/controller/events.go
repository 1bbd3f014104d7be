package controller

import (
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet"
)

// EventKind names what a rollout Event reports.
type EventKind string

// The kinds of rollout events.
const (
	// EventStarted: Put started a rollout of a new digest (superseding
	// the one before, if any).
	EventStarted EventKind = "started"
	// EventCompleted: the rollout's last wave passed its health gate.
	EventCompleted EventKind = "completed"
	// EventAborted: too many updated devices failed; Reason says why.
	EventAborted EventKind = "aborted"
)

// Event is a change of a rollout's outcome, for notifications. It holds
// names, digests and counts, never a value.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Time is when (the controller's clock).
	Time time.Time
	// Target and App name the rollout.
	Target, App string
	// From and To are the digests rolled out from and to; Supersedes is
	// the to-digest of the rollout this one replaced, if any.
	From, To, Supersedes string
	// Reason says why a rollout aborted.
	Reason string
	// Devices is how many devices the rollout started; Counts splits
	// them by status.
	Devices int
	Counts  fleet.Counts
}

// emit reports a rollout event to Options.OnEvent. It is called with c.mu
// held: OnEvent must return quickly and must not call the Controller.
func (c *Controller) emit(kind EventKind, st *fleet.State) {
	if c.onEvent == nil {
		return
	}
	c.onEvent(Event{Kind: kind, Time: c.now(), Target: c.name, App: st.App, From: st.From, To: st.To, Supersedes: st.Supersedes,
		Reason: st.Reason, Devices: len(st.Devices), Counts: st.Counts()})
}
