// Package targets defines what ferry deploys to: the Target interface that
// every kind of target implements (bare hosts running ferry-host, Kubernetes
// clusters, fleets of edge devices — one sub-package each), and the value
// types that cross it.
//
// A target is observed live (no state file): Observe reads what runs there
// now; Put and Delete change one app. The plan/apply engine (sync/plan)
// computes the changes; each target checks signatures itself before it runs
// anything.
package targets
