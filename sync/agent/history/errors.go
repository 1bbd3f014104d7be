package history

import "errors"

// The history store's sentinel errors.

// ErrHistoryLocked means another agent holds the history database in the
// data directory. Stop it first, or use another data directory.
var ErrHistoryLocked = errors.New("history database is in use by another process")
