// Package agent is ferry's GitOps loop (ferry agent, ferry up): every round
// — on its interval, a signed push webhook or an API call — it fetches the
// branch (sync/agent/gitsource), releases the newest commit through a
// release.Releaser (release.SpecReleaser, or release.LocalReleaser for ferry
// up), plans against what the targets run now and applies (sync/plan), and
// records the round in its history store (sync/agent/history) in its data
// directory.
//
// Rounds are level-based: each re-observes the targets and repairs drift.
// An invalid spec deploys nothing and keeps the last good desired state; a
// failing app blocks neither other apps nor newer commits; a rollback pin
// (Agent.Pin) holds until a newer commit changes that app. Agent.Handler
// serves the status API (/v1/...), webhooks (/hooks/...) and /metrics;
// Client is its Go client. Subscribe follows what happens live (rounds,
// app phase and health changes, notifications, and the fleet events
// cmd/ferry publishes): the dashboard (sync/agent/dashboard) streams it;
// publishing never blocks a round (events.go).
//
// # A round
//
// One round is a list of steps, run in order by runRound in round.go; each
// returns a typed result and a condition, and one place (record) summarises
// the round into its history record and the status:
//
//	step     result      conditions it may set (history steps; round class)
//	fetch    fetched     fetch ok | fetch failed, load+build skipped; waiting
//	load     loaded      load+build skipped (already released) | skipped; stalling (still invalid)
//	                     | load failed; waiting (checkout, no config) | build failed; waiting (releaser)
//	                     | load failed, build skipped; stalling (invalid spec) | load ok
//	release  *goodState  build ok | build failed; degraded (some apps failed to release)
//	plan     *planned    plan+apply skipped; blocked (no desired state yet)
//	                     | plan failed, apply skipped; waiting (targets, Compute)
//	                     | plan failed; degraded, retry (a target not planned) | plan ok
//	apply    applied     apply skipped (nothing to change) | apply failed; degraded (apps failed,
//	                     retry when Apply refused the plan) | apply ok
//	record   -           round succeeded, partial, failed or interrupted; history, status, metrics
//
// waiting: retry soon with backoff; stalling: retrying cannot help until a
// newer commit; degraded: part worked, the round is partial; blocked: an
// earlier step left nothing to work on. A releaser that reports its own
// steps (release.StepReport) has them recorded instead of load and build.
// The loop around rounds (Start, the interval, webhook and API wakes,
// backoff) is in agent.go.
//
// This package may import everything below it (sync/plan, sync/release,
// its sub-packages, spec, targets, ...); nothing in ferry but cmd/ imports
// it.
package agent
