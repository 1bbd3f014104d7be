package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
)

// hold says why a change is not made this round.
type holdFunc func(target, app string, ch plan.Change) (string, bool)

// effective returns the desired state in force with rollback pins applied,
// and which apps are pinned. Pins superseded by the commit are removed and
// recorded.
func (a *Agent) effective(rr *roundRun, g *goodState) (plan.Desired, map[string]string, map[string]string) {
	d := plan.Desired{Commit: g.desired.Commit}
	for _, dt := range g.desired.Targets {
		d.Targets = append(d.Targets, plan.DesiredTarget{Name: dt.Name, Type: dt.Type, Apps: slices.Clone(dt.Apps)})
	}
	pinned := map[string]string{}
	holds := maps.Clone(g.holds)
	pins, err := a.hist.Pins()
	if err != nil {
		rr.errs = append(rr.errs, err.Error())
		return d, pinned, holds
	}
	for _, name := range slices.Sorted(maps.Keys(pins)) {
		p := pins[name]
		cur, inRelease := g.released[name]
		_, failed := g.appErrs[name]
		switch {
		case failed:
			// Unknown whether the commit changes the app: keep the pin.
		case inRelease && p.BaseDigest == "":
			p.BaseDigest = cur
			if err := a.hist.SetPin(p); err != nil {
				rr.errs = append(rr.errs, err.Error())
			}
		case inRelease && cur == p.BaseDigest:
		default:
			why := fmt.Sprintf("commit %s changes app %s (now %s); the rollback pin to %s is superseded",
				shortSHA(g.commit), name, plan.ShortDigest(cur), plan.ShortDigest(p.Digest))
			if !inRelease {
				why = fmt.Sprintf("commit %s no longer deploys app %s; the rollback pin to %s is superseded",
					shortSHA(g.commit), name, plan.ShortDigest(p.Digest))
			}
			if err := a.hist.DeletePin(name); err != nil {
				rr.errs = append(rr.errs, err.Error())
				continue
			}
			a.log.Info("rollback pin superseded", "app", name, "pin", p.Digest, "commit", g.commit)
			rr.r.Apps = append(rr.r.Apps, history.AppRecord{Round: rr.r.ID, Commit: g.commit, Time: a.clock.Now().UTC(), App: name,
				Digest: cur, Previous: p.Digest, Action: "unpin", Result: "superseded", Detail: why})
			continue
		}
		art, err := a.hist.Artifact(name, p.Digest)
		if err != nil || art == nil {
			holds[name] = fmt.Sprintf("pinned to %s, but the history has no record of that artifact", plan.ShortDigest(p.Digest))
			continue
		}
		pinned[name] = p.Digest
		for i := range d.Targets {
			for j := range d.Targets[i].Apps {
				if d.Targets[i].Apps[j].Name == name {
					d.Targets[i].Apps[j] = *art
				}
			}
		}
	}
	return d, pinned, holds
}

// planAndApply plans the desired state in force against the live targets
// and applies what is not held.
func (a *Agent) planAndApply(rr *roundRun) {
	ctx := rr.ctx
	a.mu.Lock()
	g := a.good
	a.mu.Unlock()
	if g == nil {
		why := "no valid desired state yet"
		a.skip(rr, why, history.StepPlan, history.StepApply)
		if !rr.failed {
			rr.fail(why, true)
		}
		return
	}
	rr.r.Commit = g.commit
	t0 := a.clock.Now()
	tgts, err := a.opts.Targets(ctx, g.cfg)
	if err != nil {
		msg := fmt.Sprintf("cannot set up targets: %v", err)
		a.step(rr, history.StepPlan, t0, history.StepFailed, msg)
		a.skip(rr, "planning failed", history.StepApply)
		rr.fail(msg, true)
		return
	}
	desired, pinned, holds := a.effective(rr, g)
	suspended, err := a.hist.Suspended()
	if err != nil {
		rr.errs = append(rr.errs, err.Error())
	}
	now := a.clock.Now()
	var hostRB map[string]history.HostRollback // set once the plan observed the targets
	hold := func(target, app string, ch plan.Change) (string, bool) {
		if _, ok := suspended[app]; ok {
			return "suspended", true
		}
		if h, ok := holds[app]; ok {
			return h, true
		}
		if rb, ok := hostRB[target+"/"+app]; ok && ch.After != nil && ch.After.Digest == rb.From {
			return fmt.Sprintf("target %s rolled %s back to %s by itself at %s (%s); %s is not deployed there again until a newer commit changes app %s",
				target, plan.ShortDigest(rb.From), plan.ShortDigest(rb.To), rb.At.UTC().Format(time.RFC3339), rb.Reason, plan.ShortDigest(rb.From), app), true
		}
		if f := a.failures[target+"/"+app]; f != nil && ch.After != nil && ch.After.Digest == f.digest && now.Before(f.retryAt) {
			return fmt.Sprintf("%s failed %d time(s) (%s); next try after %s", plan.ShortDigest(f.digest), f.count, f.err,
				f.retryAt.UTC().Format(time.RFC3339)), true
		}
		return "", false
	}

	popts := a.opts.Plan
	popts.Logger = parallel.OrDefault(popts.Logger, a.opts.Logger)
	if popts.Now == nil {
		popts.Now = a.clock.Now
	}
	p, err := plan.Compute(ctx, desired, tgts, popts)
	if err != nil {
		msg := fmt.Sprintf("planning failed: %v", err)
		a.step(rr, history.StepPlan, t0, history.StepFailed, msg)
		a.skip(rr, "planning failed", history.StepApply)
		rr.fail(msg, true)
		return
	}
	hostRB = a.hostRollbacks(rr, p, desired)
	sub := *p
	sub.Targets = nil
	var errored []string
	heldN := 0
	for _, tp := range p.Targets {
		rr.obs[tp.Name] = tp.Observed
		if tp.Errored || tp.Diagnostics.HasErrors() {
			msg := fmt.Sprintf("target %s: %v", tp.Name, tp.Diagnostics.Err())
			errored = append(errored, msg)
			for _, ch := range tp.Changes {
				rec := a.record(rr, tp.Name, ch, pinned)
				rec.Result, rec.Error = string(plan.OutcomeSkipped), "target could not be planned"
				rr.r.Apps = append(rr.r.Apps, rec)
			}
			continue
		}
		ntp := tp
		ntp.Changes = nil
		for _, ch := range tp.Changes {
			if ch.Action == plan.ActionNoop {
				ntp.Changes = append(ntp.Changes, ch)
				continue
			}
			if why, ok := hold(tp.Name, ch.App, ch); ok {
				heldN++
				rec := a.record(rr, tp.Name, ch, pinned)
				rec.Action, rec.Result, rec.Detail = "hold", "held", fmt.Sprintf("%s not made: %s", ch.Action, why)
				rr.r.Apps = append(rr.r.Apps, rec)
				continue
			}
			ntp.Changes = append(ntp.Changes, ch)
		}
		sub.Targets = append(sub.Targets, ntp)
	}
	c := sub.Counts()
	msg := fmt.Sprintf("%d to create, %d to update, %d to delete, %d unchanged", c.Create, c.Update, c.Delete, c.Noop)
	if heldN > 0 {
		msg += fmt.Sprintf(", %d held", heldN)
	}
	if len(errored) > 0 {
		msg += "; not planned: " + strings.Join(errored, "; ")
		a.step(rr, history.StepPlan, t0, history.StepFailed, msg)
		rr.partial, rr.retry = true, true
		rr.errs = append(rr.errs, errored...)
	} else {
		a.step(rr, history.StepPlan, t0, history.StepOK, msg)
	}

	t0 = a.clock.Now()
	if !sub.HasChanges() {
		for _, tp := range sub.Targets {
			for _, ch := range tp.Changes {
				rec := a.record(rr, tp.Name, ch, pinned)
				rec.Result = string(plan.OutcomeUnchanged)
				rr.r.Apps = append(rr.r.Apps, rec)
			}
		}
		a.step(rr, history.StepApply, t0, history.StepSkipped, "nothing to change")
		return
	}
	aopts := a.opts.Apply
	aopts.Logger = parallel.OrDefault(aopts.Logger, a.opts.Logger)
	if aopts.SecretsFor == nil {
		aopts.SecretsFor = g.secrets
	}
	if aopts.PolicyFor == nil {
		// Each app's deploy block in the spec in force.
		aopts.PolicyFor = release.PolicyFromSpec(g.cfg)
	}
	res, err := plan.Apply(ctx, &sub, tgts, aopts)
	if res == nil {
		msg := fmt.Sprintf("apply refused: %v", err)
		a.step(rr, history.StepApply, t0, history.StepFailed, msg)
		rr.partial, rr.retry = true, true
		rr.errs = append(rr.errs, msg)
		for _, tp := range sub.Targets {
			for _, ch := range tp.Changes {
				rec := a.record(rr, tp.Name, ch, pinned)
				rec.Result, rec.Error = string(plan.OutcomeSkipped), msg
				if ch.Action == plan.ActionNoop {
					rec.Result, rec.Error = string(plan.OutcomeUnchanged), ""
				}
				rr.r.Apps = append(rr.r.Apps, rec)
			}
		}
		return
	}
	var failed []string
	for _, tr := range res.Targets {
		tp := sub.Target(tr.Name)
		for _, ar := range tr.Apps {
			var ch plan.Change
			if tp != nil {
				for _, c := range tp.Changes {
					if c.App == ar.App {
						ch = c
					}
				}
			}
			rec := a.record(rr, tr.Name, ch, pinned)
			rec.App, rec.Action, rec.Result = ar.App, string(ar.Action), string(ar.Outcome)
			rec.Digest, rec.Previous, rec.Duration, rec.Error, rec.Detail = ar.Digest, ar.Previous, ar.Duration, ar.Error, ar.Detail
			rr.r.Apps = append(rr.r.Apps, rec)
			key := tr.Name + "/" + ar.App
			switch ar.Outcome {
			case plan.OutcomeFailed:
				failed = append(failed, fmt.Sprintf("target %s: %s", tr.Name, ar.Error))
				f := a.failures[key]
				if f == nil || f.digest != ar.Digest {
					f = &appFailure{digest: ar.Digest}
					a.failures[key] = f
				}
				f.count++
				f.err = ar.Error
				f.retryAt = a.clock.Now().Add(a.appBackoff(f.count))
				a.met.appFailures.Inc()
			case plan.OutcomeApplied:
				delete(a.failures, key)
				if ch.After != nil {
					rr.deploy = append(rr.deploy, *ch.After)
				}
			case plan.OutcomeUnchanged:
				if ch.After != nil {
					rr.deploy = append(rr.deploy, *ch.After)
				}
			}
		}
	}
	switch {
	case len(failed) > 0:
		msg := fmt.Sprintf("%d applied, %d failed: %s", res.Count(plan.OutcomeApplied), len(failed), strings.Join(failed, "; "))
		a.step(rr, history.StepApply, t0, history.StepFailed, msg)
		rr.partial = true
		rr.errs = append(rr.errs, failed...)
	case err != nil:
		a.step(rr, history.StepApply, t0, history.StepFailed, err.Error())
		rr.partial = true
		rr.errs = append(rr.errs, err.Error())
	default:
		a.step(rr, history.StepApply, t0, history.StepOK, fmt.Sprintf("%d applied", res.Count(plan.OutcomeApplied)))
	}
}

// hostRollbacks records the rollbacks the targets report having made by
// themselves (once each, with a history record), marks those a newer
// commit superseded (the app's desired digest on that target is no longer
// the one rolled back from), and returns the ones in force by
// "TARGET/APP".
func (a *Agent) hostRollbacks(rr *roundRun, p *plan.Plan, desired plan.Desired) map[string]history.HostRollback {
	stored, err := a.hist.HostRollbacks()
	if err != nil {
		rr.errs = append(rr.errs, err.Error())
		return nil
	}
	want := map[string]string{} // TARGET/APP → desired digest
	for _, dt := range desired.Targets {
		for _, app := range dt.Apps {
			want[dt.Name+"/"+app.Name] = app.Digest
		}
	}
	save := func(key string, rb history.HostRollback) bool {
		if err := a.hist.SetHostRollback(rb); err != nil {
			rr.errs = append(rr.errs, err.Error())
			return false
		}
		stored[key] = rb
		return true
	}
	for _, tp := range p.Targets {
		for _, o := range tp.Observed {
			if o.RolledBack == nil || !o.Managed {
				continue
			}
			key := tp.Name + "/" + o.Name
			if old, ok := stored[key]; ok && old.From == o.RolledBack.From && old.At.Equal(o.RolledBack.At) {
				continue // seen in an earlier round
			}
			rb := history.HostRollback{Target: tp.Name, App: o.Name, From: o.RolledBack.From, To: o.RolledBack.To,
				Reason: o.RolledBack.Reason, At: o.RolledBack.At.UTC(), Round: rr.r.ID}
			if !save(key, rb) {
				continue
			}
			a.log.Warn("target rolled an app back by itself", "target", tp.Name, "app", o.Name, "from", rb.From, "to", rb.To, "reason", rb.Reason)
			rr.r.Apps = append(rr.r.Apps, history.AppRecord{Round: rr.r.ID, Commit: rr.r.Commit, Time: rb.At, App: o.Name, Target: tp.Name,
				Digest: rb.To, Previous: rb.From, Action: history.ActionHostRollback, Result: "rolled-back",
				Detail: fmt.Sprintf("target %s rolled back from %s to %s by itself: %s; the agent holds %s back until a newer commit changes the app",
					tp.Name, plan.ShortDigest(rb.From), plan.ShortDigest(rb.To), rb.Reason, plan.ShortDigest(rb.From))})
		}
	}
	active := map[string]history.HostRollback{}
	for key, rb := range stored {
		if rb.Superseded {
			continue
		}
		if d := want[key]; d == rb.From {
			active[key] = rb
			continue
		}
		rb.Superseded = true
		if !save(key, rb) {
			continue
		}
		why := fmt.Sprintf("commit %s changes app %s on target %s (now %s); the host rollback of %s no longer holds it back",
			shortSHA(p.Commit), rb.App, rb.Target, plan.ShortDigest(want[key]), plan.ShortDigest(rb.From))
		if want[key] == "" {
			why = fmt.Sprintf("commit %s no longer deploys app %s to target %s; the host rollback of %s no longer holds it back",
				shortSHA(p.Commit), rb.App, rb.Target, plan.ShortDigest(rb.From))
		}
		rr.r.Apps = append(rr.r.Apps, history.AppRecord{Round: rr.r.ID, Commit: rr.r.Commit, Time: a.clock.Now().UTC(), App: rb.App, Target: rb.Target,
			Digest: want[key], Previous: rb.From, Action: history.ActionUnhold, Result: "superseded", Detail: why})
	}
	return active
}

func (a *Agent) record(rr *roundRun, target string, ch plan.Change, pinned map[string]string) history.AppRecord {
	rec := history.AppRecord{Round: rr.r.ID, Commit: rr.r.Commit, Time: a.clock.Now().UTC(), App: ch.App, Target: target, Action: string(ch.Action)}
	if ch.After != nil {
		rec.Digest = ch.After.Digest
		if pinned[ch.App] == ch.After.Digest {
			rec.Pinned = true
		}
	}
	if ch.Before != nil {
		rec.Previous = ch.Before.Digest
	}
	return rec
}

// finish records the round, updates metrics and publishes the status.
func (a *Agent) finish(rr *roundRun) {
	r := rr.r
	r.FinishedAt = a.clock.Now().UTC()
	switch {
	case rr.ctx.Err() != nil:
		r.Result = history.RoundInterrupted
		rr.errs = append(rr.errs, "the agent stopped before the round finished; the next round converges")
	case rr.failed:
		r.Result = history.RoundFailed
	case rr.partial:
		r.Result = history.RoundPartial
	default:
		r.Result = history.RoundSucceeded
	}
	r.Error = strings.Join(rr.errs, "; ")
	// Artifacts of every desired app are recorded too, so that any
	// version the spec ever asked for can be rolled back to.
	a.mu.Lock()
	g := a.good
	a.mu.Unlock()
	arts := rr.deploy
	if g != nil {
		for _, dt := range g.desired.Targets {
			arts = append(arts, dt.Apps...)
		}
	}
	st := a.appStatus(rr, g)
	// The history write and the status update happen under one lock, so a
	// reader that sees the round finished in the history (Rounds) and then
	// asks for Status gets the status of that round, never the one before.
	a.mu.Lock()
	if err := a.hist.Finish(r, arts); err != nil {
		a.log.Error("cannot record round", "round", r.ID, "err", err)
		rr.errs = append(rr.errs, err.Error())
	}
	a.status.Running = nil
	a.status.LastRound = cloneRound(r)
	a.status.Errors = slices.Clone(rr.errs)
	a.status.Apps = st
	if g != nil {
		a.status.DesiredCommit = g.commit
	}
	if r.Result == history.RoundSucceeded {
		a.status.LastSuccessfulCommit, a.status.LastSuccessfulAt = r.Commit, r.FinishedAt
	}
	a.mu.Unlock()
	a.met.rounds.WithLabelValues(string(r.Result)).Inc()
	if r.Result == history.RoundSucceeded {
		a.met.lastSuccess.Set(float64(r.FinishedAt.UnixNano()) / 1e9)
		a.met.lastCommit.Reset()
		a.met.lastCommit.WithLabelValues(r.Commit).Set(1)
	}
	// A quiet round (nothing changed, nothing failed) is logged at debug
	// level: with a short interval it would drown everything else.
	changed := 0
	for _, ap := range r.Apps {
		if ap.Action != string(plan.ActionNoop) {
			changed++
		}
	}
	lvl := a.log.Info
	switch {
	case r.Result != history.RoundSucceeded:
		lvl = a.log.Warn
	case changed == 0:
		lvl = a.log.Debug
	}
	lvl("round finished", "changes", changed, "round", r.ID, "trigger", r.Trigger, "commit", shortSHA(r.Commit), "result", r.Result,
		"took", r.FinishedAt.Sub(r.StartedAt), "error", r.Error)
}

// appStatus summarises each app from the desired state, what the round
// observed and what it did.
func (a *Agent) appStatus(rr *roundRun, g *goodState) []AppStatus {
	apps := map[string]*AppStatus{}
	get := func(n string) *AppStatus {
		if apps[n] == nil {
			apps[n] = &AppStatus{Name: n}
		}
		return apps[n]
	}
	if g != nil {
		for n, d := range g.digests {
			get(n).Desired = d
		}
		for n, e := range g.appErrs {
			get(n).Error = e
		}
		for n, h := range g.holds {
			get(n).Held = h
		}
	}
	type key struct{ app, target string }
	ts := map[key]*AppTargetStatus{}
	for target, obs := range rr.obs {
		for _, o := range obs {
			if !o.Managed {
				continue
			}
			ts[key{o.Name, target}] = &AppTargetStatus{Target: target, Digest: o.Digest, Status: o.Status, Healthy: o.Healthy, RolledBack: o.RolledBack}
		}
	}
	for _, rec := range rr.r.Apps {
		if rec.Target == "" {
			continue
		}
		k := key{rec.App, rec.Target}
		t := ts[k]
		if t == nil {
			t = &AppTargetStatus{Target: rec.Target}
			ts[k] = t
		}
		t.Action, t.Result, t.Error, t.Detail, t.Pinned = rec.Action, rec.Result, rec.Error, rec.Detail, rec.Pinned
		if rec.Result == string(plan.OutcomeApplied) {
			t.Digest, t.Healthy, t.Status = rec.Digest, rec.Action != string(plan.ActionDelete), "serving"
			if rec.Action == string(plan.ActionDelete) {
				t.Digest, t.Status = "", "deleted"
			}
		}
	}
	for k, t := range ts {
		s := get(k.app)
		s.Targets = append(s.Targets, *t)
	}
	if g != nil && g.cfg != nil {
		for _, app := range g.cfg.Apps {
			if s := apps[app.Name]; s != nil {
				s.Hosts, s.Default = slices.Clone(app.Hosts), len(app.Hosts) == 0
			}
		}
	}
	out := make([]AppStatus, 0, len(apps))
	for _, n := range slices.Sorted(maps.Keys(apps)) {
		s := apps[n]
		slices.SortFunc(s.Targets, func(x, y AppTargetStatus) int { return strings.Compare(x.Target, y.Target) })
		out = append(out, *s)
	}
	return out
}
