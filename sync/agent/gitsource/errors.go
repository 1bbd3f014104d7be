package gitsource

import "errors"

// The git source's sentinel errors.

// ErrGitUnreachable means the spec repository could not be fetched: the
// server is down, the branch does not exist, or the credentials were
// refused. The agent keeps serving the last good state and retries with
// backoff; retrying may help.
var ErrGitUnreachable = errors.New("git repository unreachable")

// ErrGitAuth means git credentials could not be loaded (an unreadable key or
// password file, unparsable known hosts). Retrying does not help; fix the
// configuration.
var ErrGitAuth = errors.New("git credentials")

// ErrGitURL means the repository URL cannot be parsed. Retrying does not
// help.
var ErrGitURL = errors.New("invalid git URL")
