package server

import "errors"

// Sentinel errors. Every error the package returns wraps one of them.
var (
	// ErrNotFound: no device or token with that ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: an argument breaks a rule (a malformed label, a
	// negative time to live or number of uses). Retrying does not help.
	ErrInvalid = errors.New("invalid argument")
	// ErrStore: the store directory could not be read or written; retrying
	// may help once the disk is fixed.
	ErrStore = errors.New("fleet store")
)
