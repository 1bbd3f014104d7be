// Package targets defines what ferry deploys to: the Target interface that
// every kind of target implements (bare hosts running ferry-host, Kubernetes
// clusters, fleets of edge devices — one sub-package each), and the value
// types that cross it.
//
// A target is observed live (no state file): Observe reads what runs there
// now, each app with its Phase (ready, progressing, degraded, failed); Put
// and Delete change one app. Put may return before the new version is
// healthy, reporting it progressing (PutResult): asynchronous targets
// (Kubernetes, fleets) roll out in their own time, and the next plan waits
// for them instead of deploying again. The plan/apply engine (sync/plan)
// computes the changes; each target checks signatures itself before it
// runs anything.
//
// Optional capabilities are small interfaces found by type assertion:
// RollBacker, Locker, LockInspector, Differ, OwnerRecorder, SecretHasher,
// Checker, RolloutPreviewer, AppObserver.
// Package targets/open opens a spec target as the right driver.
package targets
