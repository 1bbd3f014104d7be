package plan

import "errors"

// ErrInvalidDesired means the desired state handed to Compute is not
// well formed (an empty or duplicate target name). Retrying does not help;
// fix the caller.
var ErrInvalidDesired = errors.New("invalid desired state")

// ErrPlanErrored means a plan cannot be applied because planning failed for
// at least one target (unreachable, invalid desired apps, a name clash with
// an unmanaged app, ...). The plan's diagnostics say why. Planning again may
// help when the cause was transient.
var ErrPlanErrored = errors.New("plan has errors and cannot be applied")

// ErrStalePlan means the observed state of a target moved since the plan was
// computed. Nothing was changed; compute a new plan. A *StaleError says what
// moved.
var ErrStalePlan = errors.New("saved plan is stale")

// ErrPlanFormat means a plan file or value has a format this version of
// ferry does not understand: not a ferry plan, or written by a newer ferry.
// Retrying does not help; use a matching ferry.
var ErrPlanFormat = errors.New("unsupported plan format")

// ErrNoTarget means a plan names a target for which no targets.Target was
// supplied. Retrying does not help; wire the target.
var ErrNoTarget = errors.New("no such target")

// ErrApplyFailed means Apply ran but at least one change failed; the
// ApplyResult returned alongside says which. Applying a new plan may help
// when the causes were transient.
var ErrApplyFailed = errors.New("apply finished with failures")

// ErrLock means the apply lock of a target could not be taken.
var ErrLock = errors.New("cannot take target apply lock")

// StaleError is returned (wrapping ErrStalePlan) by Apply when the observed
// state of one or more targets moved since the plan was computed.
type StaleError struct {
	// Targets lists each target whose state moved, sorted by name.
	Targets []StaleTarget
}

// StaleTarget says what moved on one target.
type StaleTarget struct {
	// Name is the target's name.
	Name string `json:"name"`
	// PlanFingerprint is the fingerprint the plan was computed from.
	PlanFingerprint string `json:"plan_fingerprint"`
	// Fingerprint is the fingerprint observed at apply time.
	Fingerprint string `json:"fingerprint"`
	// Moves describes each difference, one sentence fragment each
	// ("app hello now runs sha256:abc…, plan saw sha256:def…").
	Moves []string `json:"moves"`
}

// Error implements error: "saved plan is stale: target local: app hello now
// runs sha256:abc…, plan saw sha256:def…; app api appeared".
func (e *StaleError) Error() string {
	msg := ErrStalePlan.Error() + " (the observed state moved since it was computed; compute a new plan)"
	for _, t := range e.Targets {
		msg += ": target " + t.Name + ": " + joinMoves(t.Moves)
	}
	return msg
}

// Unwrap returns ErrStalePlan.
func (e *StaleError) Unwrap() error { return ErrStalePlan }

func joinMoves(m []string) string {
	if len(m) == 0 {
		return "fingerprint changed"
	}
	s := m[0]
	for _, x := range m[1:] {
		s += "; " + x
	}
	return s
}
