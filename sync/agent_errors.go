package sync

import "errors"

// The agent's sentinel errors. (The plan/apply engine's are in errors.go.)

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

// ErrAgentOptions means Options are not usable (no Repo, no DataDir, no
// Releaser or Targets, a Path that leaves the repository). Retrying does not
// help.
var ErrAgentOptions = errors.New("invalid agent options")

// ErrHistoryLocked means another agent holds the history database in the
// data directory. Stop it first, or use another data directory.
var ErrHistoryLocked = errors.New("history database is in use by another process")

// ErrUnknownDigest means a rollback named a digest the history has no record
// of for that app, so the agent does not know what to deploy. Retrying does
// not help; pick a digest from History.
var ErrUnknownDigest = errors.New("digest not recorded for this app")

// ErrNoPrevious means a rollback without a digest found no earlier version
// of the app in the history.
var ErrNoPrevious = errors.New("no previous version recorded")

// ErrUnknownApp means an app name is not in the current spec nor in the
// history.
var ErrUnknownApp = errors.New("unknown app")

// ErrUnauthorized is returned by Client when the status API refused the
// bearer token.
var ErrUnauthorized = errors.New("status API: unauthorized")
