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
