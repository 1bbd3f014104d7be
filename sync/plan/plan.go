package plan

import (
	"fmt"
	"slices"
	"time"

	"github.com/ferry-wasm/ferry/targets"
)

// FormatVersion is the plan format this package writes and the newest it
// reads. It changes whenever the JSON shape of Plan changes incompatibly.
const FormatVersion = 1

// formatName marks a JSON document as a ferry plan.
const formatName = "ferry-plan"

// Action is what applying a Change does to one app.
type Action string

const (
	// ActionCreate deploys an app the target does not run.
	ActionCreate Action = "create"
	// ActionUpdate deploys a new version of an app, or redeploys the same
	// version when the running one is unhealthy (drift).
	ActionUpdate Action = "update"
	// ActionDelete removes a managed app the spec no longer has.
	ActionDelete Action = "delete"
	// ActionNoop leaves an app alone: it runs the desired digest and is
	// healthy.
	ActionNoop Action = "no-op"
	// ActionWait leaves an app alone because the target is rolling out
	// exactly the desired digest (targets.PhaseProgressing): deploying it
	// again would restart a rollout that is on its way. It is not a
	// change (Plan.HasChanges); a later plan sees the rollout ready (a
	// no-op) or failed (an update).
	ActionWait Action = "wait"
)

// Plan is the set of changes that would bring targets to a desired state,
// computed by Compute against each target's live observed state. It is a
// plain value: it can be rendered, encoded to JSON (see WritePlanFile) and
// applied later by Apply, which refuses it if any target's observed state
// moved since (see TargetPlan.Fingerprint).
//
// A Plan never holds secret values: DesiredApp.Secrets is always nil in a
// plan, and Apply asks ApplyOptions.SecretsFor for them.
//
// A Plan is not safe for concurrent modification; reading it concurrently
// is fine.
type Plan struct {
	// Format is always "ferry-plan"; it marks a plan file.
	Format string `json:"format"`
	// FormatVersion is the format the plan was written in (FormatVersion).
	FormatVersion int `json:"format_version"`
	// CreatedAt is when the plan was computed (UTC).
	CreatedAt time.Time `json:"created_at"`
	// Commit is the spec commit the desired state came from.
	Commit string `json:"commit"`
	// Targets holds one entry per planned target, sorted by name.
	Targets []TargetPlan `json:"targets"`
	// Diagnostics are messages that concern no single target.
	Diagnostics Diagnostics `json:"diagnostics,omitempty"`
}

// TargetPlan is the plan for one target.
type TargetPlan struct {
	// Name is the target's name.
	Name string `json:"name"`
	// Type is the target's kind ("host", ...), from the spec.
	Type string `json:"type"`
	// Fingerprint is "sha256:<hex>" over a canonical encoding of Observed
	// (see Fingerprint). Apply refuses the plan if it moved. Empty when the
	// target could not be observed.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Observed is every app the target reported when the plan was computed,
	// managed or not, sorted by name.
	Observed []targets.ObservedApp `json:"observed"`
	// Changes holds one entry per app that is desired or managed, sorted by
	// app name, including no-ops.
	Changes []Change `json:"changes"`
	// Errored is true when planning this target failed; the plan is then
	// not applyable. Diagnostics say why.
	Errored bool `json:"errored,omitempty"`
	// Diagnostics are errors, warnings and notes about this target.
	Diagnostics Diagnostics `json:"diagnostics,omitempty"`
}

// Change is what applying the plan does to one app on one target.
type Change struct {
	// App is the app's name.
	App string `json:"app"`
	// Action is create, update, delete, wait or no-op.
	Action Action `json:"action"`
	// Reasons explain the action, one short phrase each: "not on the
	// target", "new digest sha256:aaa… → sha256:bbb…", "config changed:
	// hosts, components[web].routes", "drift: unhealthy (status failed)",
	// "removed from the spec", "progressing towards sha256:bbb…". Empty
	// for a no-op.
	Reasons []string `json:"reasons,omitempty"`
	// Objects are the app's objects that differ on the target, from
	// targets that implement targets.Differ; empty otherwise.
	Objects []targets.ObjectDiff `json:"objects,omitempty"`
	// Before is the app as observed, nil for a create.
	Before *targets.ObservedApp `json:"before,omitempty"`
	// After is what the target should run, nil for a delete. Its Secrets
	// field is always nil.
	After *targets.DesiredApp `json:"after,omitempty"`
	// Rollout previews, on a target that rolls versions out in stages
	// (targets.RolloutPreviewer: a fleet), what a create or update would
	// roll out to how many devices in how many waves, and how the app's
	// current rollout stands; nil on other targets and for deletes.
	// Informational: Apply does not read it, and it is not part of the
	// fingerprint.
	Rollout *targets.RolloutPreview `json:"rollout,omitempty"`
}

// Counts tallies a plan's changes by action. Wait counts the apps left to
// a rollout in progress (ActionWait); they are not changes.
type Counts struct {
	Create, Update, Delete, Noop, Wait int
}

// Counts returns how many changes of each action the plan holds.
func (p *Plan) Counts() Counts {
	var c Counts
	for _, t := range p.Targets {
		for _, ch := range t.Changes {
			switch ch.Action {
			case ActionCreate:
				c.Create++
			case ActionUpdate:
				c.Update++
			case ActionDelete:
				c.Delete++
			case ActionWait:
				c.Wait++
			default:
				c.Noop++
			}
		}
	}
	return c
}

// HasChanges reports whether applying the plan would change anything
// (any create, update or delete; a wait is not a change). An errored plan
// may still report false.
func (p *Plan) HasChanges() bool {
	c := p.Counts()
	return c.Create+c.Update+c.Delete > 0
}

// Errored reports whether planning failed for the plan as a whole or for
// any target.
func (p *Plan) Errored() bool {
	if p.Diagnostics.HasErrors() {
		return true
	}
	for _, t := range p.Targets {
		if t.Errored || t.Diagnostics.HasErrors() {
			return true
		}
	}
	return false
}

// Applyable returns nil when Apply may act on the plan, or an error wrapping
// ErrPlanFormat (a format this ferry does not know) or ErrPlanErrored (with
// every error diagnostic). Staleness is checked by Apply itself, against the
// live targets.
func (p *Plan) Applyable() error {
	if p == nil {
		return fmt.Errorf("%w: no plan", ErrPlanFormat)
	}
	if p.Format != formatName || p.FormatVersion != FormatVersion {
		return fmt.Errorf("%w: plan format %q version %d, this ferry applies %q version %d",
			ErrPlanFormat, p.Format, p.FormatVersion, formatName, FormatVersion)
	}
	if !p.Errored() {
		return nil
	}
	var all Diagnostics
	all = append(all, p.Diagnostics...)
	for _, t := range p.Targets {
		if t.Errored && !t.Diagnostics.HasErrors() {
			all = append(all, errorDiag(t.Name, "", "Target errored during planning", ""))
		}
		all = append(all, t.Diagnostics...)
	}
	return fmt.Errorf("%w: %w", ErrPlanErrored, all.Err())
}

// Digests returns every artifact and component digest the plan mentions
// (observed and desired), sorted and without duplicates.
func (p *Plan) Digests() []string {
	var ds []string
	for _, t := range p.Targets {
		for _, o := range t.Observed {
			ds = append(ds, o.Digest, o.Previous)
		}
		for _, ch := range t.Changes {
			if ch.After != nil {
				ds = append(ds, ch.After.Digest)
				for _, c := range ch.After.App.Components {
					ds = append(ds, c.Digest)
				}
			}
		}
	}
	ds = slices.DeleteFunc(ds, func(s string) bool { return s == "" })
	slices.Sort(ds)
	return slices.Compact(ds)
}

// Target returns the plan of the named target, or nil.
func (p *Plan) Target(name string) *TargetPlan {
	for i := range p.Targets {
		if p.Targets[i].Name == name {
			return &p.Targets[i]
		}
	}
	return nil
}
