// Package plantest holds test support shared by the tests of sync/plan,
// sync/release, sync/agent and sync/agent/history: MemTarget, a narrow
// in-memory targets.Target with real switch/rollback semantics (and
// LockingMem, with an apply lock; Async mode, which reports Puts
// progressing until Settle; DiffingMem, a targets.Differ), and small builders of desired apps (App,
// Dg, Tmap).
//
// It imports only targets and deploy, so that package plan's own tests can
// use it. It is for tests only: the proof that a feature works uses a real
// host (internal/hosttest).
package plantest
