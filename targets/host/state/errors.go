package state

import "errors"

// Sentinel errors; errors returned by this package wrap one of them (test
// with errors.Is) and name the app, file or digest concerned.
var (
	// ErrNotFound means the store holds no record for the app (or no blob
	// for the digest). Not retryable.
	ErrNotFound = errors.New("state: not found")
	// ErrCorrupt means a record, secrets file or blob cannot be decoded or
	// does not match its digest. The entry must be deployed again.
	ErrCorrupt = errors.New("state: corrupt entry")
	// ErrInvalid means the caller passed something that cannot be stored:
	// an unsafe app name, a malformed digest, a module missing for a
	// component. Not retryable without changing the input.
	ErrInvalid = errors.New("state: invalid input")
)
