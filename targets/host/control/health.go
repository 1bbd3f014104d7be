package control

import (
	"fmt"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// Defaults of a component's health block (spec/LANGUAGE.md, "health").
const (
	// DefaultHealthInterval is the time between two probes of a serving
	// version: 10 s.
	DefaultHealthInterval = 10 * time.Second
	// DefaultProbeTimeout bounds one probe after deploy: 5 s.
	DefaultProbeTimeout = 5 * time.Second
	// DefaultFailureThreshold is how many probes in a row must fail before
	// a version counts as unhealthy: 3.
	DefaultFailureThreshold = 3
)

// HealthPolicy is one component's probe policy after its deploy, with the
// defaults filled in. A zero Bake means the host never rolls back by
// itself.
type HealthPolicy struct {
	// Interval is the time between probes.
	Interval time.Duration
	// Timeout bounds one probe; a probe that takes longer fails.
	Timeout time.Duration
	// FailureThreshold is how many consecutive failed probes make the
	// version unhealthy.
	FailureThreshold int
	// Bake is how long after its deploy a version that turns unhealthy is
	// rolled back by the host to its previous version.
	Bake time.Duration
}

// PolicyOf returns the policy of health block h with the defaults filled
// in; ok is false when h declares no probe (nil or no path).
func PolicyOf(h *deploy.Health) (p HealthPolicy, ok bool) {
	if h == nil || h.Path == "" {
		return HealthPolicy{}, false
	}
	p = HealthPolicy{Interval: h.Interval.Std(), Timeout: h.Timeout.Std(), FailureThreshold: h.FailureThreshold, Bake: h.Bake.Std()}
	if p.Interval <= 0 {
		p.Interval = DefaultHealthInterval
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultProbeTimeout
	}
	if p.FailureThreshold <= 0 {
		p.FailureThreshold = DefaultFailureThreshold
	}
	if p.Bake < 0 {
		p.Bake = 0
	}
	return p, true
}

// HealthState is what the prober knows about one component of the serving
// version between probes. The zero value is a version just deployed (its
// deploy probe passed, so it starts healthy: see NewHealthState).
type HealthState struct {
	// Healthy is false once FailureThreshold probes in a row failed, and
	// true again after one passes.
	Healthy bool `json:"healthy"`
	// LastProbe is when the last probe after deploy ran; zero before the
	// first one.
	LastProbe time.Time `json:"last_probe,omitzero"`
	// LastError says why the last probe failed; empty when it passed.
	LastError string `json:"last_error,omitempty"`
	// ConsecutiveFailures counts the failed probes since the last passing
	// one.
	ConsecutiveFailures int `json:"consecutive_failures"`
}

// NewHealthState is the state of a version whose deploy probe passed.
func NewHealthState() HealthState { return HealthState{Healthy: true} }

// ProbeDue reports whether a probe of a component in state s with policy
// p is due at now.
func ProbeDue(p HealthPolicy, s HealthState, now time.Time) bool {
	return s.LastProbe.IsZero() || !now.Before(s.LastProbe.Add(p.Interval))
}

// HealthAction is what the prober does after a probe.
type HealthAction string

// HealthAction values.
const (
	// HealthKeep: nothing changes but the recorded state.
	HealthKeep HealthAction = "keep"
	// HealthRollBack: switch the app back to its previous version.
	HealthRollBack HealthAction = "rollback"
)

// HealthInput is everything DecideHealth looks at: no clock, no I/O.
type HealthInput struct {
	// Policy is the component's probe policy.
	Policy HealthPolicy
	// State is the component's state before this probe.
	State HealthState
	// DeployedAt is when the serving version was deployed.
	DeployedAt time.Time
	// At is when the probe ran.
	At time.Time
	// OK is whether the probe answered 2xx within its timeout.
	OK bool
	// Message says why it failed ("GET /healthz answered 500").
	Message string
	// CanRollBack is true when the host keeps an older, different
	// previous version and the serving version was not itself reached by a
	// rollback (so that two bad versions never flip between each other).
	CanRollBack bool
}

// DecideHealth folds one probe result into the component's state and says
// whether the version must be rolled back, and why. A version is rolled
// back when the probe makes it unhealthy (FailureThreshold failures in a
// row) no later than Bake after its deploy, and it can be.
func DecideHealth(in HealthInput) (HealthState, HealthAction, string) {
	s := in.State
	s.LastProbe = in.At
	if in.OK {
		s.Healthy, s.LastError, s.ConsecutiveFailures = true, "", 0
		return s, HealthKeep, ""
	}
	s.ConsecutiveFailures++
	s.LastError = in.Message
	if s.ConsecutiveFailures < in.Policy.FailureThreshold {
		return s, HealthKeep, ""
	}
	s.Healthy = false
	since := in.At.Sub(in.DeployedAt)
	if in.Policy.Bake <= 0 || since > in.Policy.Bake || !in.CanRollBack {
		return s, HealthKeep, ""
	}
	return s, HealthRollBack, fmt.Sprintf("unhealthy %s after its deploy, within its bake of %s: %d health probes in a row failed, the last: %s",
		since.Round(time.Millisecond), in.Policy.Bake, s.ConsecutiveFailures, in.Message)
}
