package api

import "time"

// Error codes carried in ErrorBody.Code.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeVerification     = "verification_failed"
	CodeNotFound         = "not_found"
	CodeArtifactNotFound = "artifact_not_found"
	CodeNoPrevious       = "no_previous"
	CodeRejected         = "rejected"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
	CodeLocked           = "locked"
	CodeLeaseLost        = "lease_lost"
	CodeLeaseNotFound    = "lease_not_found"
)

// Bounds of a lease's TTL (LockRequest.TTL).
const (
	// DefaultLockTTL is the TTL of a lease when the request names none.
	DefaultLockTTL = 30 * time.Second
	// MinLockTTL is the shortest TTL the host grants.
	MinLockTTL = 5 * time.Second
	// MaxLockTTL is the longest TTL the host grants.
	MaxLockTTL = 10 * time.Minute
)

// LeaseHeader carries, on PUT, DELETE and rollback requests of a client
// that holds the host's apply lock, the id of its lease. The host refuses
// such a request with 410 (code "lease_lost") unless the id is the lease
// that holds the lock now, so a holder that lost its lease (expired and
// taken, force-unlocked, or the host restarted) cannot go on changing the
// host. Requests without it are refused with 409 (code "locked") while
// any lease holds the lock, and go through while none does.
const LeaseHeader = "Ferry-Lock-Lease"
