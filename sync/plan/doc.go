// Package sync computes and applies plans: it brings targets to a desired
// state the way Terraform brings infrastructure to a configuration, but
// against state read live from each target rather than a state file.
//
// The flow is:
//
//	desired := sync.Desired{...}                       // from the spec + built, signed digests
//	plan, err := sync.ComputePlan(ctx, desired, tgts, sync.PlanOptions{})
//	plan.Render(os.Stdout)                             // "+ create", "~ update", "- delete"
//	sync.WritePlanFile("plan.json", plan)              // optional: apply later
//	res, err := sync.Apply(ctx, plan, tgts, sync.ApplyOptions{SecretsFor: ...})
//
// A Plan is a value. It records, per target, every change with its reasons,
// the apps observed and a fingerprint of them (Fingerprint). Apply observes
// each target again and refuses the plan as stale (ErrStalePlan, with a
// *StaleError saying what moved) if the fingerprint changed, so a saved plan
// is applied exactly as reviewed or not at all. An errored plan (a target
// unreachable while planning, malformed desired apps, a clash with an app
// ferry does not manage) is never applied.
//
// Apply holds no state of its own: if it dies mid-way, a new plan shows what
// is left and applying it converges. Optional abilities of a target are
// found by type assertion: targets.RollBacker (switch back to the previous
// version after a failed health gate) and Locker (an apply lock held by the
// target itself). ApplyOptions.LockDir adds a local flock per target.
//
// # Secrets
//
// Plans never hold secret values: ComputePlan strips DesiredApp.Secrets
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
//	      "after": targets.DesiredApp (absent for delete; no secrets)
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
// # Release and agent
//
// BuildRelease turns a spec directory into signed artifacts: load (spec),
// build (builder, cached by input hash), push (registry, content-addressed:
// unchanged blobs are not uploaded again) and sign (signer). Its Release
// gives the Desired state; an app that failed to release is listed in
// DesiredTarget.Keep, so the plan leaves what runs alone instead of pruning.
//
// Agent is the GitOps loop around it (ferry agent, ferry up): every round —
// on its interval, a signed push webhook or an API call — it fetches the
// branch with go-git, releases the newest commit through a Releaser
// (SpecReleaser, or LocalReleaser for ferry up), plans against what the
// targets run now and applies, and records the round in a bbolt history in
// its data directory. Rounds are level-based: each re-observes the targets
// and repairs drift. An invalid spec deploys nothing and keeps the last good
// desired state; a failing app blocks neither other apps nor newer commits;
// a rollback pin (Agent.Pin) holds until a newer commit changes that app.
// Agent.Handler serves the status API (/v1/...), webhooks (/hooks/...) and
// /metrics; Client is its Go client.
//
// This package is named like the standard library's sync; import it as
// ferrysync where both are needed.
package plan
