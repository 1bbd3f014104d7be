package controller

import (
	"errors"

	"github.com/ferry-wasm/ferry/targets"
)

// Sentinel errors; every error the package returns wraps one of them (or a
// targets/fleet or targets/fleet/server sentinel).
var (
	// ErrNoRollout: the app has no rollout on this target.
	ErrNoRollout = errors.New("no rollout of that app")
	// ErrAborted: the rollout of that digest was aborted (by its abort
	// rule or by a person). Putting the same digest again does not help:
	// deploy a newer digest, which supersedes it.
	// It is targets.ErrRolloutAborted, which the agent knows.
	ErrAborted = targets.ErrRolloutAborted
	// ErrInvalid: an argument breaks a rule (an app without a name or
	// digest, a nil fleet target or server).
	ErrInvalid = errors.New("invalid argument")
)
