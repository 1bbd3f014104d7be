package driver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferry-wasm/ferry/targets/host/api"
)

// Sentinel errors of the client (besides targets.ErrVerification,
// targets.ErrUnhealthy and targets.ErrUnavailable, which it also returns).
// Errors from the client are *APIError values wrapping one of them; test
// with errors.Is.
var (
	// ErrUnauthorized means the host refused the bearer token (401). Not
	// retryable with the same token.
	ErrUnauthorized = errors.New("driver: token refused by host")
	// ErrNotFound means the host runs no app of that name (404).
	ErrNotFound = errors.New("driver: app not found on host")
	// ErrArtifactNotFound means the registry holds no artifact with the
	// digest the PUT named (404 with code "artifact_not_found").
	ErrArtifactNotFound = errors.New("driver: artifact not found in registry")
	// ErrNoPrevious means a rollback was asked for an app without a
	// previous version (409).
	ErrNoPrevious = errors.New("driver: no previous version to roll back to")
	// ErrBadRequest means the host rejected the request itself: a bad app
	// name, a reference without a digest, a malformed body (400).
	ErrBadRequest = errors.New("driver: bad request")
	// ErrServer means the host failed in a way it did not classify (500).
	ErrServer = errors.New("driver: host error")
	// ErrLocked means another holder has the host's apply lock (409 with
	// code "locked"); APIError.Lock names it. Retrying later can help.
	ErrLocked = errors.New("driver: apply lock held by another holder")
	// ErrLeaseLost means a lease of the apply lock is gone: it expired and
	// someone else took it, it was released (or force-unlocked), or the
	// host restarted since it was granted (410, or 404 with code
	// "lease_not_found"). Take the lock again.
	ErrLeaseLost = errors.New("driver: apply lock lease lost")
	// ErrLockUnsupported means the host has no /v1/lock (a ferry-host
	// older than the apply lock).
	ErrLockUnsupported = errors.New("driver: host does not support the apply lock")
)

// APIError is an error answer from the control API (or a failure to get
// one). It wraps the sentinel that classifies it.
type APIError struct {
	// Op is the request, e.g. "PUT /v1/apps/web".
	Op string
	// StatusCode is the HTTP status; 0 when the host could not be reached.
	StatusCode int
	// Code is the host's error code (api.Code* constants), if any.
	Code string
	// Message is the host's explanation, or the transport error.
	Message string
	// Err is the sentinel (ErrUnauthorized, targets.ErrVerification, ...).
	Err error
	// Lock is the lease holding the apply lock when Err is ErrLocked.
	Lock *api.Lease
}

// Error implements error.
func (e *APIError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("ferry-host: %s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("ferry-host: %s: %d %s: %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Unwrap returns the sentinel.
func (e *APIError) Unwrap() error { return e.Err }
