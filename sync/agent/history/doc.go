// Package history is the agent's record of what happened: rounds with
// their steps and per-app results, the artifacts each app ran, rollback
// pins, suspended apps and the rollbacks targets made by themselves, in a
// bbolt database in the agent's data directory (Store, opened by Open,
// which refuses with ErrHistoryLocked while another agent holds it).
//
// This package may import sync/plan (for the desired state it stores, with
// secrets stripped), targets, deploy and bbolt; never the agent.
package history
