package sync

import (
	"github.com/ferry-wasm/ferry/spec"
)

// PolicyFromSpec returns an ApplyOptions.PolicyFor that reads each app's
// deploy block from cfg (LANGUAGE.md, "deploy"): its timeout, and
// auto_rollback = false as OnFailureLeave (true as OnFailureRollBack).
// Apps without a deploy block, and every app when cfg is nil, get the
// zero AppPolicy, that is ApplyOptions' own Timeout and OnFailure. The
// policy is the same on every target.
func PolicyFromSpec(cfg *spec.Config) func(target, app string) AppPolicy {
	return func(_, app string) AppPolicy {
		if cfg == nil {
			return AppPolicy{}
		}
		a := cfg.App(app)
		if a == nil || a.Deploy == nil {
			return AppPolicy{}
		}
		p := AppPolicy{Timeout: a.Deploy.Timeout}
		if r := a.Deploy.AutoRollback; r != nil {
			p.OnFailure = OnFailureRollBack
			if !*r {
				p.OnFailure = OnFailureLeave
			}
		}
		return p
	}
}
