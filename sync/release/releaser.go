package release

import (
	"context"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/hashicorp/hcl/v2"
)

// RoundInput is what a Releaser made of one commit: the desired state of
// every target, the loaded spec, and what went wrong.
type RoundInput struct {
	// Desired lists, per spec target, the apps that were built, pushed and
	// signed successfully, pinned by digest, with their secret values.
	// Apps that failed are left out and named in AppErrors.
	Desired plan.Desired
	// Config is the loaded spec; the agent hands it to Options.Targets.
	// It may be nil only when Diagnostics has errors.
	Config *spec.Config
	// Diagnostics are the spec's diagnostics. When any is an error the
	// agent deploys nothing from this commit: the previous desired state
	// stays in force, and the errors (with file:line) show in status and
	// history.
	Diagnostics hcl.Diagnostics
	// AppErrors names each app that could not be built, pushed or signed,
	// and why. Such an app keeps the version it runs; the other apps of
	// the commit deploy.
	AppErrors map[string]error
	// Steps optionally reports the load, build, push and sign steps as the
	// releaser measured them. When empty the agent records one load step
	// (from Diagnostics) and one build step (from AppErrors).
	Steps []StepReport
}

// StepReport is one step of a release as the releaser measured it.
//
// It is release's own type, not the agent's history record: dependencies
// point one way (the agent imports release, release imports nothing of the
// agent), and how the agent stores a round is the agent's business. The
// agent turns each report into one step of the round in its history, under
// the same name.
type StepReport struct {
	// Name is the step's name: "load", "build", "push" or "sign".
	Name string
	// Outcome says whether the step worked, failed or was skipped.
	Outcome StepOutcome
	// Message explains a failed or skipped step, or summarises one that
	// worked.
	Message string
	// Duration is how long the step took; it is not observed for a
	// skipped step.
	Duration time.Duration
}

// StepOutcome is how one step of a release ended.
type StepOutcome string

const (
	// StepDone means the step worked.
	StepDone StepOutcome = "ok"
	// StepFailed means the step failed; StepReport.Message says why.
	StepFailed StepOutcome = "failed"
	// StepSkipped means the step was not needed or could not run.
	StepSkipped StepOutcome = "skipped"
)

// A Releaser turns a checked-out commit into the desired state: load the
// spec in dir, build every component (cached), push and sign the apps.
// An error means the release failed as a whole for a reason that retrying
// may fix (a registry unreachable); spec mistakes go in
// RoundInput.Diagnostics and per-app failures in RoundInput.AppErrors.
// The agent calls Release from one goroutine at a time; it must honour ctx.
type Releaser interface {
	Release(ctx context.Context, dir, commit string) (*RoundInput, error)
}

// ReleaserFunc adapts a function to Releaser.
type ReleaserFunc func(ctx context.Context, dir, commit string) (*RoundInput, error)

// Release calls f.
func (f ReleaserFunc) Release(ctx context.Context, dir, commit string) (*RoundInput, error) {
	return f(ctx, dir, commit)
}
