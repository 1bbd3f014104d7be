// Package release is ferry's release step: it turns a spec directory at one
// commit into built, pushed and signed artifacts, and so into the desired
// state that package plan computes a plan for.
//
// BuildRelease loads the spec (spec), builds each component (builder,
// cached by input hash), pushes the app artifact (registry,
// content-addressed: unchanged blobs are not uploaded again) and signs it
// (signer). With a trust block in the spec, every pushed artifact is
// verified against it and an untrusted app fails with a *TrustError
// (ErrUntrusted). The Release gives the Desired state; an app that failed to
// release is listed in DesiredTarget.Keep, so the plan leaves what runs
// alone instead of pruning. Release.Desired, PolicyFromSpec (each app's
// deploy block as a plan.AppPolicy) and the Releaser contract (SpecReleaser,
// LocalReleaser) are what the agent and the CLI use.
//
// Repository files are read through the repository root that
// WithRepositoryRoot puts in the context, so no symlink or ".." in a spec
// leaves the checkout.
//
// This package may import spec, builder, registry, signer, targets, deploy
// and sync/plan; never anything under sync/agent. A Releaser reports its
// steps in its own type (StepReport); the agent turns them into history
// records.
package release
