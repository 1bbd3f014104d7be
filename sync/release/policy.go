package release

import (
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
)

// PolicyFromSpec returns an ApplyOptions.PolicyFor that reads each app's
// deploy block from cfg (LANGUAGE.md, "deploy"): its timeout, and
// auto_rollback = false as OnFailureLeave (true as OnFailureRollBack).
// Apps without a deploy block, and every app when cfg is nil, get the
// zero AppPolicy, that is ApplyOptions' own Timeout and OnFailure. The
// policy is the same on every target.
func PolicyFromSpec(cfg *spec.Config) func(target, app string) plan.AppPolicy {
	return func(_, app string) plan.AppPolicy {
		if cfg == nil {
			return plan.AppPolicy{}
		}
		a := cfg.App(app)
		if a == nil || a.Deploy == nil {
			return plan.AppPolicy{}
		}
		p := plan.AppPolicy{Timeout: a.Deploy.Timeout}
		if r := a.Deploy.AutoRollback; r != nil {
			p.OnFailure = plan.OnFailureRollBack
			if !*r {
				p.OnFailure = plan.OnFailureLeave
			}
		}
		return p
	}
}
