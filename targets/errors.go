package targets

import "errors"

// ErrUnavailable means the target could not be reached or answered with a
// transient failure; retrying later may help.
var ErrUnavailable = errors.New("target unavailable")

// ErrUnhealthy means a new version did not become healthy in time; the
// previous version keeps serving.
var ErrUnhealthy = errors.New("new version did not become healthy")

// ErrVerification means the target refused the artifact because its
// signature did not verify against the target's own trust policy.
var ErrVerification = errors.New("artifact signature not trusted by target")

// ErrRolloutAborted means the target's own rollout of that version was
// aborted (a fleet's abort rule, or a person) and putting the same version
// again does not help: a newer one supersedes it. The target announces the
// abort itself, so the agent does not notify it again as a failed apply.
var ErrRolloutAborted = errors.New("rollout aborted")
