package agent

// This file turns what a round saw into notifications (sync/notify): an
// app's change that failed, a rollback the agent made after it, a
// rollback a target made by itself, an app that turned unhealthy. The
// round calls notifyApplyFailed from its apply step and notifyRound from
// record; Options.Notify receives the events and must not block
// (notify.Notifier.Publish never does). Each is also published on the
// agent's event bus (events.go).

import (
	"errors"
	"strings"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
)

// notifyApplyFailed reports app result ar of target, which failed, and
// the agent's rollback of it when Apply rolled it back: once per digest,
// when it first fails (the apply step has counted it in a.failures), not
// at every retry; a manual sync, which clears the failures, reports anew.
// A rollout the target aborted itself is not reported: the target did.
func (a *Agent) notifyApplyFailed(rr *round, target string, ar plan.AppResult) {
	if f := a.failures[target+"/"+ar.App]; f != nil && f.count > 1 {
		return
	}
	if errors.Is(ar.Err, targets.ErrRolloutAborted) {
		// A fleet's aborted rollout: the controller announced it
		// (rollout aborted, with its reason and device counts); the
		// agent's retry of the same digest adds nothing to that.
		return
	}
	now := a.clock.Now()
	reason := ar.Error
	if ar.Detail != "" {
		reason += "; " + ar.Detail
	}
	a.notify(notify.Event{Kind: notify.KindApplyFailed, Time: now, App: ar.App, Target: target, Digest: ar.Digest,
		Previous: ar.Previous, Commit: rr.r.Commit, Round: rr.r.ID, Reason: reason})
	if ar.RolledBack {
		a.notify(notify.Event{Kind: notify.KindRollback, By: notify.ByAgent, Time: now, App: ar.App, Target: target,
			Digest: ar.Digest, Previous: ar.RolledBackTo, Commit: rr.r.Commit, Round: rr.r.ID, Reason: ar.Detail})
	}
}

// notifyRound reports, for finished round r, the rollbacks targets made
// by themselves (recorded once each, so notified once) and the apps that
// turned unhealthy in what the round observed: once per app and target
// until it is healthy again. Fleet targets are left out: their rollouts
// notify for themselves (rollout aborted).
func (a *Agent) notifyRound(r *history.Round, observed map[string][]targets.ObservedApp) {
	var stored map[string]history.HostRollback // read once, when needed
	for _, rec := range r.Apps {
		if rec.Action != history.ActionHostRollback {
			continue
		}
		if stored == nil {
			stored, _ = a.hist.HostRollbacks()
		}
		// The target's own reason; the record's detail, which also says
		// what the agent does about it, when the store cannot tell.
		reason := rec.Detail
		if rb, ok := stored[rec.Target+"/"+rec.App]; ok && rb.From == rec.Previous && rb.Reason != "" {
			reason = rb.Reason
		}
		a.notify(notify.Event{Kind: notify.KindRollback, By: notify.ByHost, Time: rec.Time, App: rec.App, Target: rec.Target,
			Digest: rec.Previous, Previous: rec.Digest, Commit: r.Commit, Round: r.ID, Reason: reason})
	}
	if a.unhealthy == nil {
		a.unhealthy = map[string]bool{}
	}
	g := a.inForce()
	seen := map[string]bool{}
	defer func() {
		// Forget apps gone from a target the round observed.
		for key := range a.unhealthy {
			target, _, _ := strings.Cut(key, "/")
			if _, ok := observed[target]; ok && !seen[key] {
				delete(a.unhealthy, key)
			}
		}
	}()
	for target, apps := range observed {
		if g != nil && g.cfg != nil {
			if t := g.cfg.Target(target); t != nil && t.Type == spec.TargetFleet {
				continue
			}
		}
		for _, o := range apps {
			if !o.Managed {
				continue
			}
			key := target + "/" + o.Name
			seen[key] = true
			ph := o.EffectivePhase()
			if ph != targets.PhaseDegraded && ph != targets.PhaseFailed {
				delete(a.unhealthy, key)
				continue
			}
			if a.unhealthy[key] {
				continue
			}
			a.unhealthy[key] = true
			reason := o.Message
			if reason == "" {
				reason = "the target reports the app " + string(ph)
				if o.Status != "" {
					reason += " (" + o.Status + ")"
				}
			}
			a.notify(notify.Event{Kind: notify.KindHealthDegraded, Time: a.clock.Now(), App: o.Name, Target: target,
				Digest: o.Digest, Commit: r.Commit, Round: r.ID, Reason: reason})
		}
	}
}
