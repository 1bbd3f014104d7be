// Package controller drives the rollouts of one fleet target: it is the
// targets.Target of a spec fleet target (a selector and a rollout policy),
// between the pure rollout engine (targets/fleet) and the device API
// (targets/fleet/server).
//
// Put starts a rollout of the app's digest (fleet.NewState, or
// fleet.Supersede when a rollout of another digest exists), saves it and
// returns targets.PhaseProgressing at once. The controller's own loop
// (Start) then calls fleet.Step whenever devices report or the decision's
// NextCheck passes, with every enrolled device's latest status as a
// fleet.Device, saves the new State after every step, and only then sets
// each selected device's desired state on the server to what the State
// says (State.Desired: the to-digest for started devices, the from-digest
// for rolled-back ones). A device the rollout has not started keeps the app
// it was last told to run; after a restart, the version it reports (when
// the controller knows its reference), else the rollout's from-digest. The
// rollback of an aborted rollout is the engine's decision; the controller
// applies it like any other.
//
// Observe reports each app with the phase of its rollout: progressing
// while it runs, ready once completed, failed once aborted; its message
// counts the devices.
//
// # Persistence
//
// Each app has a folder under the controller's directory: state.json (the
// fleet.State, see fleet.LoadState) and app.json (the artifact references
// and variable values of the digests the rollout may send, whether it is
// paused), both written atomically with mode 0600. Because desired states
// are derived only from a saved State, a controller killed at any moment
// and started again over the same directory resumes the rollout: no device
// is moved twice, none is skipped.
//
// The values (DesiredApp.Values, the app's secret values) are kept in
// app.json, readable by the agent's user only, because devices ask for
// them whenever they poll and a restarted agent must serve them before the
// next commit is applied.
//
// # Pause, resume, abort
//
// Pause stops stepping a rollout (no device starts, none is judged); Resume
// continues it. A device that was updating during a pause is judged
// against its device timeout from its start, pause included. Abort ends a
// rollout as the engine's abort rule would: with auto_rollback every
// device it started goes back to the from-digest.
//
// # Concurrency
//
// A Controller is safe for concurrent use. Its zero value is not usable;
// call New.
package controller
