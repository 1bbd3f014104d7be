// Package plan computes and applies plans: it brings targets to a desired
// state the way Terraform brings infrastructure to a configuration, but
// against state read live from each target rather than a state file.
//
// The flow is:
//
//	desired := plan.Desired{...}                       // from the spec + built, signed digests
//	p, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{})
//	p.Render(os.Stdout)                                // "+ create", "~ update", "- delete"
//	plan.WritePlanFile("plan.json", p)                 // optional: apply later
//	res, err := plan.Apply(ctx, p, tgts, plan.ApplyOptions{SecretsFor: ...})
//
// A Plan is a value. It records, per target, every change with its reasons,
// the apps observed and a fingerprint of them (Fingerprint). Apply observes
// each target again and refuses the plan as stale (ErrStalePlan, with a
// *StaleError saying what moved) if the fingerprint changed, so a saved plan
// is applied exactly as reviewed or not at all. An errored plan (a target
// unreachable while planning, malformed desired apps, a clash with an app
// ferry does not manage) is never applied.
//
// A target that rolls out asynchronously (targets.PhaseProgressing) is
// waited for, not redeployed: Compute plans ActionWait for an app
// progressing towards the desired digest, and Apply reports a Put that
// was accepted but is still rolling out as OutcomeProgressing. A target
// that implements targets.Differ lists drifted objects on each change.
//
// Apply holds no state of its own: if it dies mid-way, a new plan shows what
// is left and applying it converges. Optional abilities of a target are
// found by type assertion: targets.RollBacker (switch back to the previous
// version after a failed health gate) and targets.Locker (an apply lock held by the
// target itself). ApplyOptions.LockDir adds a local flock per target.
//
// # Secrets
//
// Plans never hold secret values: Compute strips DesiredApp.Secrets
// (which is also never serialised), refuses secret variables that carry a
// value, and Apply asks ApplyOptions.SecretsFor for the values just before
// each Put. Diagnostics, reasons and events name fields, never values.
//
// # Plan file
//
// A plan file (WritePlanFile, ReadPlanFile) is the JSON encoding of Plan:
//
//	{
//	  "format": "ferry-plan",
//	  "format_version": 1,
//	  "created_at": "2026-01-02T03:04:05Z",
//	  "commit": "<git commit>",
//	  "targets": [{
//	    "name": "local", "type": "host",
//	    "fingerprint": "sha256:<hex>",
//	    "observed": [ targets.ObservedApp... ],
//	    "changes": [{
//	      "app": "hello", "action": "create|update|delete|no-op",
//	      "reasons": ["..."],
//	      "before": targets.ObservedApp (absent for create),
//	      "after": targets.DesiredApp (absent for delete; no secrets),
//	      "rollout": targets.RolloutPreview (fleet targets only: devices,
//	                 waves, rates and the current rollout; absent otherwise)
//	    }],
//	    "errored": false,
//	    "diagnostics": [{"severity": "error|warning|note", "summary": "...", "detail": "...", "target": "...", "app": "..."}]
//	  }],
//	  "diagnostics": [...]
//	}
//
// A reader refuses a file whose format is not "ferry-plan" or whose
// format_version is newer than FormatVersion.
//
// # Imports
//
// This package may import only targets, deploy, the standard library and
// internal helpers that import nothing else of ferry (internal/parallel);
// `go list -deps ./sync/plan` shows it. The release step (sync/release)
// and the agent (sync/agent) build on it; it knows neither.
package plan
