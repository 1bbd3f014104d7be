// Package fleet is the rollout engine of fleet targets: it decides, step by
// step, which edge devices move to a new app version, when a wave is good
// enough to go on, and when to stop and roll back. It is a pure,
// deterministic library: no clock, no I/O, no goroutines, no logging. The
// transport that talks to devices (long-polls, reports) lives elsewhere and
// feeds this package observations.
//
// # Model
//
// One State is the rollout of one app on one fleet target from a digest to
// another. The agent keeps it (as JSON; see LoadState) and, whenever
// devices report or Decision.NextCheck passes, calls
//
//	dec, st, err = fleet.Step(st, &target.Fleet, devices, now)
//
// with the latest observation of every device (a Device each) and the
// current time. Step returns what to do now (dec.Start, dec.RollBack) and
// the next State. State.Desired answers the same question level-based,
// per device, for a device's long-poll.
//
// Devices are put into waves by Assign: the target's selector picks the
// fleet, each device lands in exactly one wave, and the order inside
// percentage waves is the SHA-256 of the device ID, so it never changes
// across calls, restarts or a reordered device list.
//
//	     ┌──────────────────────────────────────────────┐
//	     ▼                                              │ next wave
//	start pending devices of wave i     ──►  gate of wave i: every device started,
//	(≤ RateAt(i) starts per minute)          healthy/devices ≥ SuccessRatio,
//	     │                                   held for Soak (a dip resets it)
//	     ▼                                              │ last wave
//	devices report: healthy, unhealthy,                 ▼
//	or silent past DeviceTimeout (failed)           completed ──► joiners start at once
//	     │
//	     ▼ failed/reported > FailureRatio and reported ≥ MinSample
//	aborted ──► with AutoRollback: every started device back to From
//
// # Rules where the spec language is silent
//
//   - Percentages are cumulative for selector waves too (spec.Wave's
//     "cumulative share"): a wave "ring=canary, 50%" after a 10% wave
//     takes canaries until half of all canaries are covered, counting
//     those the 10% wave already took.
//   - A device counts for the gate of the wave it was started in. A wave
//     gate judges the devices started in it plus those assigned to it and
//     not started; it cannot hold while any of them is not started. An
//     empty wave passes at once, without soak.
//   - A wave whose failures make its gate unreachable (Gate.Stalled) is
//     reported, not aborted: only the abort rule stops a rollout. It waits
//     for a newer digest or a person.
//   - Healthy and failed devices of all waves together are the abort
//     sample. Failed is final within a rollout; a healthy device that later
//     reports unhealthy on the new digest becomes failed (and so lowers its
//     wave's healthy share: a dip).
//   - A report counts only if it is about the to-digest and not older than
//     the device's start; devices that go offline keep their last state
//     (an updating one times out).
//   - Devices that join during a rollout are assigned a wave; they start
//     when that wave is reached, or at once (rate limit permitting) if it
//     has passed. After completion, joiners start at once. The rate limit
//     applies to every start.
//   - The rate limit grows per wave, not per minute (RateAt): while wave
//     k is current, RateLimit × RateGrowth^k starts a minute, rounded
//     down, capped at RateMax. The rate a wave earns is kept by joiners
//     and after completion (the last wave's rate). The sliding window
//     counts every start of the last minute, whatever rate it was made
//     at, so a rate that grows frees slots at once.
//   - Rollback returns exactly the devices the rollout started (updating,
//     healthy or failed) to State.From; pending devices are never touched.
//     An aborted rollout is final. A completed one never aborts: devices
//     that fail after completion (late joiners) are recorded, not rolled
//     back.
//   - A newer digest supersedes a rollout (Supersede): a fresh rollout
//     from the first wave, every device pending, so a failure of the old
//     digest never blocks the new one. Its from-digest is the old to-digest
//     if the old rollout completed, else the old from-digest.
//   - The policy is read at every step; if it lost waves, the current wave
//     is clamped to its last.
package fleet
