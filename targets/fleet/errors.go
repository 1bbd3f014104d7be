package fleet

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them,
// so callers can test with errors.Is. None of them is transient: retrying
// with the same input gives the same error.
var (
	// ErrInvalidPolicy means a fleet target or its rollout policy breaks a
	// rule of the spec language (waves, percentages, ratios, timeouts,
	// selectors). spec.Load never returns such a policy; a hand-built one
	// may be.
	ErrInvalidPolicy = errors.New("invalid rollout policy")
	// ErrInvalidDevice means a device observation has an empty ID, or two
	// observations share one ID.
	ErrInvalidDevice = errors.New("invalid device observation")
	// ErrInvalidState means a rollout State is nil or inconsistent (no
	// to-digest, an unknown outcome or device status).
	ErrInvalidState = errors.New("invalid rollout state")
	// ErrStateVersion means a saved State was written by a version of ferry
	// whose format this one does not read.
	ErrStateVersion = errors.New("unsupported rollout state version")
)
