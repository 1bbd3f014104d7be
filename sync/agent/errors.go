package agent

import "errors"

// The agent's sentinel errors.

// ErrAgentOptions means Options are not usable (no Repo, no DataDir, no
// Releaser or Targets, a Path that leaves the repository). Retrying does not
// help.
var ErrAgentOptions = errors.New("invalid agent options")

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

// ErrNotLeader means a pin, unpin, suspend or resume reached an agent that
// keeps its state in a StateStore but is not running rounds (a standby
// replica): only the leader writes that state. Send it to the leader.
var ErrNotLeader = errors.New("this agent is not the leader")

// ErrStateSave means the agent recorded a change in its own history but
// could not save it to its StateStore; the next round or change saves it
// again. Retrying helps.
var ErrStateSave = errors.New("state not saved")
