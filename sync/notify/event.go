package notify

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Kind names what an Event reports.
type Kind string

// The kinds of events.
const (
	// KindRolloutStarted: a fleet target started rolling a version out.
	KindRolloutStarted Kind = "rollout.started"
	// KindRolloutCompleted: the last wave of a rollout passed its health
	// gate.
	KindRolloutCompleted Kind = "rollout.completed"
	// KindRolloutAborted: too many updated devices failed; the rollout
	// stopped and its devices roll back (Reason says why).
	KindRolloutAborted Kind = "rollout.aborted"
	// KindApplyFailed: an app's change failed on a target (Reason says
	// why).
	KindApplyFailed Kind = "apply.failed"
	// KindHealthDegraded: an app a target runs turned unhealthy.
	KindHealthDegraded Kind = "health.degraded"
	// KindRollback: an app runs its previous version again (By says who
	// rolled it back: the host by itself, or the agent after a failed
	// apply).
	KindRollback Kind = "rollback"
)

// Kinds returns all the kinds, in a stable order (a fresh slice).
func Kinds() []Kind {
	return []Kind{KindRolloutStarted, KindRolloutCompleted, KindRolloutAborted, KindApplyFailed, KindHealthDegraded, KindRollback}
}

// Who rolled back, in Event.By.
const (
	// ByHost: the target (a ferry-host whose health probes failed within
	// the version's bake) rolled the app back by itself.
	ByHost = "host"
	// ByAgent: the agent rolled the app back after its change failed.
	ByAgent = "agent"
)

// Devices are a fleet rollout's device counts.
type Devices struct {
	// Total is how many devices the rollout has started.
	Total int `json:"total"`
	// Healthy, Updating, Failed and RolledBack count them by status.
	Healthy    int `json:"healthy"`
	Updating   int `json:"updating"`
	Failed     int `json:"failed"`
	RolledBack int `json:"rolled_back"`
}

// Event is one thing that happened. Every field but Kind may be empty. It
// holds names, digests, counts and a reason in a full sentence, never a
// secret value: Reason comes from ferry's own error messages, which never
// hold one, and a Notifier also scrubs its own secrets and URL
// credentials from it.
type Event struct {
	// ID identifies the event; a receiver may use it to drop a delivery
	// it already had (a retry after a lost response). Publish sets it
	// when empty.
	ID string `json:"id"`
	// Kind says what happened.
	Kind Kind `json:"kind"`
	// Time is when it happened; Publish sets it when zero.
	Time time.Time `json:"time"`
	// App and Target name the app and the target.
	App    string `json:"app,omitempty"`
	Target string `json:"target,omitempty"`
	// Digest is the version concerned: the one that failed, was rolled
	// out or was rolled back from.
	Digest string `json:"digest,omitempty"`
	// Previous is the version before (a rollout's from-digest), or the
	// one that runs again after a rollback.
	Previous string `json:"previous,omitempty"`
	// Commit is the spec commit the agent deployed, when known.
	Commit string `json:"commit,omitempty"`
	// Round is the agent round that saw it; zero for fleet events, which
	// happen between rounds.
	Round uint64 `json:"round,omitempty"`
	// By says who rolled back (ByHost, ByAgent), for KindRollback.
	By string `json:"by,omitempty"`
	// Reason says why, in a full sentence.
	Reason string `json:"reason,omitempty"`
	// Devices are a fleet rollout's device counts; nil for others.
	Devices *Devices `json:"devices,omitempty"`
}

// newID returns a random event ID.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "evt_" + hex.EncodeToString(b[:])
}
