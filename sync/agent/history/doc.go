// Package history is the agent's record of what happened: rounds with
// their steps and per-app results, the artifacts each app ran, rollback
// pins, suspended apps and the rollbacks targets made by themselves, in a
// bbolt database in the agent's data directory (Store, opened by Open,
// which refuses with ErrHistoryLocked while another agent holds it).
//
// The store's API is what the agent needs: it writes rounds (Begin,
// Progress, Finish) and typed records (SetPin, DeletePin, Suspend, Resume,
// SetHostRollback), and reads them back (Rounds, Round, AppHistory,
// Artifact, ArtifactDigests, LastSuccess, Pins, Suspended, HostRollbacks).
// The value types (Round, StepResult, AppRecord, Pin, ...) are also the
// status API's JSON. Bucket names and record keys stay inside the store.
//
// This package may import sync/plan (for the desired state it stores, with
// secrets stripped), targets, deploy and bbolt; never the agent.
package history
