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
// Client is its Go client.
//
// This package may import everything below it (sync/plan, sync/release,
// its sub-packages, spec, targets, ...); nothing in ferry but cmd/ imports
// it.
package agent
