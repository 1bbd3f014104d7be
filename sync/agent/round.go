package agent

// This file is one agent round, top to bottom. runRound is the list of its
// steps; each step is a method below, in the order it runs, that does its
// work and returns a typed result and a condition:
//
//	fetch   → fetched     git fetch of the branch
//	load    → loaded      checkout, the Releaser (load, build, push, sign)
//	release → *goodState  the new desired state in force
//	plan    → *planned    Compute against the live targets, holds left out
//	apply   → applied     Apply of what is not held
//	record                the round's result, history, status, metrics, log
//
// Steps never write the round's record or the agent's status themselves:
// track adds a step's condition to the round (its history steps, app
// records and errors) and publishes the running round; record is the one
// place that summarises the finished round and writes it to the history
// and the status. What a step changes is the agent's own memory between
// rounds (what was released, which apps wait to retry) and its stored
// pins and host rollbacks.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/hashicorp/hcl/v2"
)

// runRound runs one round and records it; it reports whether the next
// round should come early, with backoff.
func (a *Agent) runRound(ctx context.Context, trigger string) (retry bool) {
	rr, err := a.begin(ctx, trigger)
	if err != nil {
		return true
	}

	// The source: a new commit becomes the desired state in force, or
	// the one in force stays.
	f, c := a.fetch(rr)
	rr.r.Fetched = f.commit
	a.track(rr, c)
	if f.commit != "" {
		l, c := a.load(rr, f)
		rr.r.SpecErrors = l.specErrors
		a.track(rr, c)
		if l.in != nil {
			a.publishSpecErrors(l.specErrors)
		}
		if l.ready {
			_, c := a.release(rr, l)
			a.track(rr, c)
		}
	}

	// The targets: whatever the source did, the desired state in force is
	// planned against what runs now, so drift is repaired every round.
	g := a.inForce()
	if g != nil {
		rr.r.Commit = g.commit
		if info, err := a.git.CommitInfo(g.commit); err == nil {
			rr.r.Author, rr.r.Message = info.Author, info.Subject
		}
	}
	p, c := a.plan(rr, g)
	a.track(rr, c)
	var ap applied
	if p != nil {
		ap, c = a.apply(rr, p)
		a.track(rr, c)
	}

	a.record(rr, p, ap)
	return rr.retry
}

// round is one round's working record. Only runRound, begin, track and
// record write it; steps read it (its ID and commit go into app records).
type round struct {
	ctx     context.Context
	r       *history.Round
	retry   bool // the next round comes early, with backoff
	failed  bool // nothing new deployed: the result is failed
	partial bool // part of the round worked: the result is partial
	errs    []string
}

// condition is what a step leaves behind for the round.
type condition struct {
	// steps are the history records of the step, and of the steps it
	// made unnecessary or impossible (skipped), in order.
	steps []history.StepResult
	// apps are the app records the step made, in order.
	apps []history.AppRecord
	// notes are errors the round reports without changing its result
	// (a pin it could not update).
	notes []string
	// err is nil when the step did its job.
	err *stepError
}

// stepError is why a step did not do all of its job, classed the way
// flux's source-controller classes reconcile errors (serror.Stalling,
// serror.Waiting): by what it means for the round's result and whether
// the next round should come early. Build one with waiting, stalling,
// degraded or blocked.
type stepError struct {
	msgs         []string // what the round's Error says, in order
	partial      bool     // part of the work was done: the round is partial, not failed
	retry        bool     // the next round comes early, with backoff
	unlessFailed bool     // counts only when no earlier step failed
}

// waiting: the step failed for a reason a retry may fix (git, a registry
// or the targets unreachable). The round fails, nothing new deploys, and
// the next round comes early with backoff.
func waiting(msg string) *stepError { return &stepError{msgs: []string{msg}, retry: true} }

// stalling: the step failed for a reason retrying cannot fix (the spec is
// invalid). The round fails and the next one comes at its interval; a
// newer commit fixes it.
func stalling(msg string) *stepError { return &stepError{msgs: []string{msg}} }

// degraded: part of the step's work failed (some apps or targets), the
// rest was done; the round is partial. retry brings the next round early
// (a target could not be planned); without it the apps that failed retry
// on their own backoff.
func degraded(retry bool, msgs ...string) *stepError {
	return &stepError{msgs: msgs, partial: true, retry: retry}
}

// blocked: the step could not run because the steps before it left
// nothing to work on. It fails the round with a retry, unless an earlier
// step already failed it and said why.
func blocked(msg string) *stepError {
	return &stepError{msgs: []string{msg}, retry: true, unlessFailed: true}
}

// begin records a new running round. When the history cannot record it,
// the error is in the status and begin returns it.
func (a *Agent) begin(ctx context.Context, trigger string) (*round, error) {
	r, err := a.hist.Begin(trigger, a.clock.Now())
	if err != nil {
		a.log.Error("cannot record round", "err", err)
		a.mu.Lock()
		a.status.Errors = []string{err.Error()}
		a.mu.Unlock()
		return nil, err
	}
	a.mu.Lock()
	a.status.Running = cloneRound(r)
	a.mu.Unlock()
	if trigger == "api" {
		// A manual sync retries everything now.
		clear(a.failures)
		a.releaseAt = time.Time{}
	}
	a.log.Debug("round started", "round", r.ID, "trigger", trigger)
	a.Publish(Event{Kind: EventRoundStarted, Round: r.ID, Trigger: trigger})
	return &round{ctx: ctx, r: r}, nil
}

// fetched is the result of the fetch step.
type fetched struct {
	commit string // the branch's newest commit; "" when the fetch failed
}

// fetch fetches the branch.
//
// Conditions: fetch ok; or fetch failed, load and build skipped, waiting.
func (a *Agent) fetch(rr *round) (fetched, condition) {
	t0 := a.clock.Now()
	commit, err := a.git.Fetch(rr.ctx)
	if err != nil {
		return fetched{}, condition{
			steps: append([]history.StepResult{a.stepResult(history.StepFetch, t0, history.StepFailed, err.Error())},
				skipped("no commit fetched", history.StepLoad, history.StepBuild)...),
			err: waiting(err.Error() + "; the targets keep serving the last good state"),
		}
	}
	return fetched{commit: commit}, condition{
		steps: []history.StepResult{a.stepResult(history.StepFetch, t0, history.StepOK, "branch "+a.opts.Branch+" at "+shortSHA(commit))},
	}
}

// loaded is the result of the load step.
type loaded struct {
	commit string
	// in is what the releaser made of the commit; nil when the releaser
	// did not run (the commit was released already, the checkout failed)
	// or failed as a whole.
	in *release.RoundInput
	// specErrors are the spec's diagnostics when it is invalid (also
	// when it was found invalid in an earlier round).
	specErrors []history.SpecDiagnostic
	// ready means the spec is valid and loaded: the release step adopts
	// in.
	ready bool
	// t0 is when the load started; the build step is timed from it.
	t0 time.Time
}

// load checks out the fetched commit and hands it to the Releaser, which
// loads the spec, builds, pushes and signs; unless the commit was released
// already and is not due for a retry.
//
// Conditions: load and build skipped (already released); load and build
// skipped, stalling (already found invalid); load failed, build skipped,
// waiting (checkout); build failed, waiting (the releaser failed as a
// whole); load failed, build skipped, stalling (invalid spec); load failed,
// waiting (no config); load ok. A releaser that reports its own steps
// (RoundInput.Steps) has them recorded instead of load ok and build.
func (a *Agent) load(rr *round, f fetched) (loaded, condition) {
	commit := f.commit
	l := loaded{commit: commit}
	if commit == a.released && (!a.releaseRetry || a.clock.Now().Before(a.releaseAt)) {
		if a.invalidMsg != "" {
			// Still invalid: keep saying so every round.
			l.specErrors = a.invalidDiags
			return l, condition{
				steps: skipped("commit "+shortSHA(commit)+" was already loaded and is invalid", history.StepLoad, history.StepBuild),
				err:   stalling(a.invalidMsg),
			}
		}
		return l, condition{steps: skipped("commit "+shortSHA(commit)+" already released", history.StepLoad, history.StepBuild)}
	}
	// A release may take long (builds); checkpoint which commit this
	// round works on, so that a crash leaves an interrupted round that
	// says so.
	if err := a.hist.Progress(rr.r); err != nil {
		a.log.Warn("cannot record round progress", "round", rr.r.ID, "err", err)
	}
	l.t0 = a.clock.Now()
	dir, err := a.git.Checkout(commit)
	if err != nil {
		return l, condition{
			steps: append([]history.StepResult{a.stepResult(history.StepLoad, l.t0, history.StepFailed, err.Error())},
				skipped("checkout failed", history.StepBuild)...),
			err: waiting(err.Error()),
		}
	}
	specDir := filepath.Join(dir, filepath.FromSlash(a.opts.Path))
	in, err := a.opts.Releaser.Release(release.WithRepositoryRoot(rr.ctx, dir), specDir, commit)
	if err == nil && in == nil {
		err = errors.New("releaser returned nothing")
	}
	if err != nil {
		msg := fmt.Sprintf("release of %s failed: %v", shortSHA(commit), err)
		a.released, a.releaseRetry, a.releaseAt, a.invalidMsg, a.invalidDiags = commit, true, time.Time{}, "", nil
		return l, condition{
			steps: []history.StepResult{a.stepResult(history.StepBuild, l.t0, history.StepFailed, msg)},
			err:   waiting(msg + "; the targets keep serving the last good state"),
		}
	}
	l.in = in
	var c condition
	for _, s := range in.Steps {
		c.steps = append(c.steps, stepRecord(s))
	}
	a.released, a.releaseRetry, a.invalidMsg, a.invalidDiags = commit, false, "", nil
	if in.Diagnostics.HasErrors() {
		diags := specDiagnostics(in.Diagnostics, dir)
		var first []string
		for _, d := range diags {
			if d.Severity == "error" {
				first = append(first, d.String())
			}
		}
		msg := fmt.Sprintf("spec of %s is invalid; nothing from it is deployed: %s", shortSHA(commit), strings.Join(first, "; "))
		if len(in.Steps) == 0 {
			c.steps = append(c.steps, a.stepResult(history.StepLoad, l.t0, history.StepFailed, msg))
			c.steps = append(c.steps, skipped("the spec is invalid", history.StepBuild)...)
		}
		c.err = stalling(msg)
		l.specErrors = diags
		a.invalidMsg, a.invalidDiags = msg, diags
		return l, c
	}
	if in.Config == nil {
		msg := "releaser returned no spec config"
		c.steps = append(c.steps, a.stepResult(history.StepLoad, l.t0, history.StepFailed, msg))
		c.err = waiting(msg)
		a.releaseRetry = true
		return l, c
	}
	if len(in.Steps) == 0 {
		c.steps = append(c.steps, a.stepResult(history.StepLoad, l.t0, history.StepOK,
			fmt.Sprintf("%d apps, %d targets", len(in.Config.Apps), len(in.Config.Targets))))
	}
	l.ready = true
	return l, c
}

// release makes the loaded commit the desired state in force: its apps
// that released, and for each app that failed its previous version (or a
// hold when it has none). It prunes checkouts of older commits.
//
// Conditions: build ok; or build failed, degraded (some apps failed to
// build, push or sign; their release retries with backoff from Interval).
func (a *Agent) release(rr *round, l loaded) (*goodState, condition) {
	in := l.in
	a.mu.Lock()
	prev := a.good
	a.mu.Unlock()
	g := a.newGood(l.commit, in, prev)
	var c condition
	if len(in.AppErrors) > 0 {
		var parts []string
		for _, n := range slices.Sorted(maps.Keys(in.AppErrors)) {
			parts = append(parts, fmt.Sprintf("app %s: %v", n, in.AppErrors[n]))
			c.apps = append(c.apps, history.AppRecord{Round: rr.r.ID, Commit: l.commit, Time: a.clock.Now().UTC(), App: n,
				Action: "release", Result: string(plan.OutcomeFailed), Error: in.AppErrors[n].Error(), Detail: g.holdOrKeep(n)})
		}
		msg := "release failed for " + strings.Join(parts, "; ")
		if len(in.Steps) == 0 {
			c.steps = append(c.steps, a.stepResult(history.StepBuild, l.t0, history.StepFailed, msg))
		}
		c.err = degraded(false, msg)
		a.releaseRetry = true
		a.releaseFails++
		a.releaseAt = a.clock.Now().Add(a.appBackoff(a.releaseFails))
	} else {
		a.releaseFails = 0
		if len(in.Steps) == 0 {
			c.steps = append(c.steps, a.stepResult(history.StepBuild, l.t0, history.StepOK,
				fmt.Sprintf("%d apps built, pushed and signed", len(g.released))))
		}
	}
	a.mu.Lock()
	a.good = g
	a.mu.Unlock()
	keep := []string{l.commit}
	if prev != nil {
		keep = append(keep, prev.commit)
	}
	a.git.Prune(keep...)
	return g, c
}

// planned is the result of the plan step.
type planned struct {
	g      *goodState
	tgts   map[string]targets.Target
	sub    plan.Plan                        // the plan without held changes and targets that could not be planned
	pinned map[string]string                // app → digest it is pinned at
	obs    map[string][]targets.ObservedApp // target → what the plan observed
	tErrs  map[string]string                // target → why it could not be planned
	full   []PlannedChange                  // every change the plan computed, held ones too, no-ops aside
}

// plan plans g, the desired state in force with rollback pins applied,
// against the live targets, and leaves out the changes it holds
// (suspended apps, failed releases without a previous version, digests a
// target rolled back by itself, apps waiting to retry). A nil result means
// there is nothing to apply.
//
// Conditions: plan and apply skipped, blocked (no desired state yet); plan
// failed, apply skipped, waiting (the targets cannot be set up, Compute
// failed); plan failed, degraded with retry (some targets could not be
// planned); plan ok.
func (a *Agent) plan(rr *round, g *goodState) (*planned, condition) {
	if g == nil {
		why := "no valid desired state yet"
		return nil, condition{steps: skipped(why, history.StepPlan, history.StepApply), err: blocked(why)}
	}
	ctx := rr.ctx
	var c condition
	t0 := a.clock.Now()
	fail := func(msg string) (*planned, condition) {
		c.steps = append(c.steps, a.stepResult(history.StepPlan, t0, history.StepFailed, msg))
		c.steps = append(c.steps, skipped("planning failed", history.StepApply)...)
		c.err = waiting(msg)
		return nil, c
	}
	tgts, err := a.opts.Targets(ctx, g.cfg)
	if err != nil {
		return fail(fmt.Sprintf("cannot set up targets: %v", err))
	}
	desired, pinned, holds := a.effective(rr, g, &c)
	suspended, err := a.hist.Suspended()
	if err != nil {
		c.notes = append(c.notes, err.Error())
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
		return fail(fmt.Sprintf("planning failed: %v", err))
	}
	hostRB = a.hostRollbacks(rr, p, desired, &c)
	out := &planned{g: g, tgts: tgts, sub: *p, pinned: pinned, obs: map[string][]targets.ObservedApp{}, tErrs: map[string]string{}}
	out.sub.Targets = nil
	var errored []string
	heldN := 0
	for _, tp := range p.Targets {
		out.obs[tp.Name] = tp.Observed
		for _, ch := range tp.Changes {
			if ch.Action != plan.ActionNoop {
				out.full = append(out.full, plannedChange(tp.Name, ch))
			}
		}
		if tp.Errored || tp.Diagnostics.HasErrors() {
			msg := fmt.Sprintf("target %s: %v", tp.Name, tp.Diagnostics.Err())
			errored = append(errored, msg)
			out.tErrs[tp.Name] = tp.Diagnostics.Err().Error()
			for _, ch := range tp.Changes {
				rec := a.appRecord(rr, tp.Name, ch, pinned)
				rec.Result, rec.Error = string(plan.OutcomeSkipped), "target could not be planned"
				c.apps = append(c.apps, rec)
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
				rec := a.appRecord(rr, tp.Name, ch, pinned)
				rec.Action, rec.Result, rec.Detail = "hold", "held", fmt.Sprintf("%s not made: %s", ch.Action, why)
				c.apps = append(c.apps, rec)
				continue
			}
			ntp.Changes = append(ntp.Changes, ch)
		}
		out.sub.Targets = append(out.sub.Targets, ntp)
	}
	n := out.sub.Counts()
	msg := fmt.Sprintf("%d to create, %d to update, %d to delete, %d unchanged", n.Create, n.Update, n.Delete, n.Noop)
	if heldN > 0 {
		msg += fmt.Sprintf(", %d held", heldN)
	}
	if len(errored) > 0 {
		msg += "; not planned: " + strings.Join(errored, "; ")
		c.steps = append(c.steps, a.stepResult(history.StepPlan, t0, history.StepFailed, msg))
		c.err = degraded(true, errored...)
	} else {
		c.steps = append(c.steps, a.stepResult(history.StepPlan, t0, history.StepOK, msg))
	}
	return out, c
}

// effective returns the desired state in force with rollback pins applied,
// which apps are pinned, and why apps are held. Pins superseded by the
// commit are removed, with an app record in c.
func (a *Agent) effective(rr *round, g *goodState, c *condition) (plan.Desired, map[string]string, map[string]string) {
	d := plan.Desired{Commit: g.desired.Commit}
	for _, dt := range g.desired.Targets {
		d.Targets = append(d.Targets, plan.DesiredTarget{Name: dt.Name, Type: dt.Type, Apps: slices.Clone(dt.Apps)})
	}
	pinned := map[string]string{}
	holds := maps.Clone(g.holds)
	pins, err := a.hist.Pins()
	if err != nil {
		c.notes = append(c.notes, err.Error())
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
				c.notes = append(c.notes, err.Error())
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
				c.notes = append(c.notes, err.Error())
				continue
			}
			a.log.Info("rollback pin superseded", "app", name, "pin", p.Digest, "commit", g.commit)
			c.apps = append(c.apps, history.AppRecord{Round: rr.r.ID, Commit: g.commit, Time: a.clock.Now().UTC(), App: name,
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

// hostRollbacks records the rollbacks the targets report having made by
// themselves (once each, with an app record in c), marks those a newer
// commit superseded (the app's desired digest on that target is no longer
// the one rolled back from), and returns the ones in force by
// "TARGET/APP".
func (a *Agent) hostRollbacks(rr *round, p *plan.Plan, desired plan.Desired, c *condition) map[string]history.HostRollback {
	stored, err := a.hist.HostRollbacks()
	if err != nil {
		c.notes = append(c.notes, err.Error())
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
			c.notes = append(c.notes, err.Error())
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
			c.apps = append(c.apps, history.AppRecord{Round: rr.r.ID, Commit: rr.r.Commit, Time: rb.At, App: o.Name, Target: tp.Name,
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
		c.apps = append(c.apps, history.AppRecord{Round: rr.r.ID, Commit: rr.r.Commit, Time: a.clock.Now().UTC(), App: rb.App, Target: rb.Target,
			Digest: want[key], Previous: rb.From, Action: history.ActionUnhold, Result: "superseded", Detail: why})
	}
	return active
}

// applied is the result of the apply step.
type applied struct {
	// deployed are the artifacts the targets run after the round (applied
	// or unchanged), recorded so that they can be rolled back to.
	deployed []targets.DesiredApp
}

// apply applies the planned changes. An app whose change fails is not
// tried again at that digest before a backoff starting at Interval.
//
// Conditions: apply skipped (nothing to change); apply failed, degraded
// with retry (Apply refused the plan); apply failed, degraded (some apps
// failed, or Apply reported an error); apply ok.
func (a *Agent) apply(rr *round, p *planned) (applied, condition) {
	var (
		out applied
		c   condition
	)
	t0 := a.clock.Now()
	if !p.sub.HasChanges() {
		for _, tp := range p.sub.Targets {
			for _, ch := range tp.Changes {
				rec := a.appRecord(rr, tp.Name, ch, p.pinned)
				rec.Result = string(plan.OutcomeUnchanged)
				c.apps = append(c.apps, rec)
			}
		}
		c.steps = append(c.steps, a.stepResult(history.StepApply, t0, history.StepSkipped, "nothing to change"))
		return out, c
	}
	aopts := a.opts.Apply
	aopts.Logger = parallel.OrDefault(aopts.Logger, a.opts.Logger)
	if aopts.SecretsFor == nil {
		aopts.SecretsFor = p.g.secrets
	}
	if aopts.PolicyFor == nil {
		// Each app's deploy block in the spec in force.
		aopts.PolicyFor = release.PolicyFromSpec(p.g.cfg)
	}
	res, err := plan.Apply(rr.ctx, &p.sub, p.tgts, aopts)
	if res == nil {
		msg := fmt.Sprintf("apply refused: %v", err)
		c.steps = append(c.steps, a.stepResult(history.StepApply, t0, history.StepFailed, msg))
		c.err = degraded(true, msg)
		for _, tp := range p.sub.Targets {
			for _, ch := range tp.Changes {
				rec := a.appRecord(rr, tp.Name, ch, p.pinned)
				rec.Result, rec.Error = string(plan.OutcomeSkipped), msg
				if ch.Action == plan.ActionNoop {
					rec.Result, rec.Error = string(plan.OutcomeUnchanged), ""
				}
				c.apps = append(c.apps, rec)
			}
		}
		return out, c
	}
	var failed []string
	progressing := 0
	for _, tr := range res.Targets {
		tp := p.sub.Target(tr.Name)
		for _, ar := range tr.Apps {
			var ch plan.Change
			if tp != nil {
				for _, tc := range tp.Changes {
					if tc.App == ar.App {
						ch = tc
					}
				}
			}
			rec := a.appRecord(rr, tr.Name, ch, p.pinned)
			rec.App, rec.Action, rec.Result = ar.App, string(ar.Action), string(ar.Outcome)
			rec.Digest, rec.Previous, rec.Duration, rec.Error, rec.Detail = ar.Digest, ar.Previous, ar.Duration, ar.Error, ar.Detail
			c.apps = append(c.apps, rec)
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
				a.notifyApplyFailed(rr, tr.Name, ar)
			case plan.OutcomeApplied:
				delete(a.failures, key)
				if ch.After != nil {
					out.deployed = append(out.deployed, *ch.After)
				}
			case plan.OutcomeUnchanged:
				if ch.After != nil {
					out.deployed = append(out.deployed, *ch.After)
				}
			case plan.OutcomeProgressing:
				// Accepted and rolling out (or still rolling out: a wait).
				// Not failed, so its backoff ends; not yet deployed, so it
				// is no known-good version: a later round that sees it
				// ready records it as unchanged, and deployed then.
				delete(a.failures, key)
				progressing++
			}
		}
	}
	switch {
	case len(failed) > 0:
		msg := fmt.Sprintf("%d applied, %d failed: %s", res.Count(plan.OutcomeApplied), len(failed), strings.Join(failed, "; "))
		c.steps = append(c.steps, a.stepResult(history.StepApply, t0, history.StepFailed, msg))
		c.err = degraded(false, failed...)
	case err != nil:
		c.steps = append(c.steps, a.stepResult(history.StepApply, t0, history.StepFailed, err.Error()))
		c.err = degraded(false, err.Error())
	default:
		msg := fmt.Sprintf("%d applied", res.Count(plan.OutcomeApplied))
		if progressing > 0 {
			msg += fmt.Sprintf(", %d progressing", progressing)
		}
		c.steps = append(c.steps, a.stepResult(history.StepApply, t0, history.StepOK, msg))
	}
	return out, c
}

// appRecord starts the record of change ch of app ch.App on target.
func (a *Agent) appRecord(rr *round, target string, ch plan.Change, pinned map[string]string) history.AppRecord {
	rec := history.AppRecord{Round: rr.r.ID, Commit: rr.r.Commit, Time: a.clock.Now().UTC(), App: ch.App, Target: target, Action: string(ch.Action),
		Rollout: strings.Join(plan.RolloutLines(ch), "; ")}
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

// track adds a step's condition to the round: its history steps (and
// their durations and failures to the metrics), app records and errors,
// and the result it implies; then it publishes the running round.
func (a *Agent) track(rr *round, c condition) {
	for _, s := range c.steps {
		rr.r.Steps = append(rr.r.Steps, s)
		if s.Status != history.StepSkipped {
			a.met.stepDuration.WithLabelValues(s.Step).Observe(s.Duration.Std().Seconds())
		}
		if s.Status == history.StepFailed {
			a.met.errors.WithLabelValues(s.Step).Inc()
		}
	}
	rr.r.Apps = append(rr.r.Apps, c.apps...)
	rr.errs = append(rr.errs, c.notes...)
	if e := c.err; e != nil && !(e.unlessFailed && rr.failed) {
		rr.errs = append(rr.errs, e.msgs...)
		rr.retry = rr.retry || e.retry
		if e.partial {
			rr.partial = true
		} else {
			rr.failed = true
		}
	}
	a.mu.Lock()
	a.status.Running = cloneRound(rr.r)
	if rr.r.Fetched != "" {
		a.status.FetchedCommit = rr.r.Fetched
	}
	a.mu.Unlock()
}

// publishSpecErrors shows the diagnostics of the spec the releaser just
// loaded in the status (none when it is valid).
func (a *Agent) publishSpecErrors(diags []history.SpecDiagnostic) {
	a.mu.Lock()
	a.status.SpecErrors = diags
	a.mu.Unlock()
}

// record is the last step: it summarises the round's result, writes the
// round to the history and the status (under one lock), and updates the
// metrics and the log.
func (a *Agent) record(rr *round, p *planned, ap applied) {
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
	g := a.inForce()
	arts := ap.deployed
	if g != nil {
		for _, dt := range g.desired.Targets {
			arts = append(arts, dt.Apps...)
		}
	}
	var obs map[string][]targets.ObservedApp
	if p != nil {
		obs = p.obs
	}
	st := appStatus(r, g, obs)
	var tst []TargetStatus
	var changes []PlannedChange
	if p != nil {
		tst = targetStatus(p)
		changes = p.full
	}
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
	before := a.status.Apps
	a.status.Apps = st
	if p != nil {
		a.status.Targets, a.status.Plan = tst, changes
	} else {
		// Planning failed as a whole: the targets are as unknown as
		// the reason says.
		for i := range a.status.Targets {
			a.status.Targets[i].Reachable, a.status.Targets[i].Error = false, "not planned: "+r.Error
		}
	}
	if g != nil {
		a.status.DesiredCommit = g.commit
	}
	if r.Result == history.RoundSucceeded {
		a.status.LastSuccessfulCommit, a.status.LastSuccessfulAt = r.Commit, r.FinishedAt
	}
	a.mu.Unlock()
	// The saved state (Options.State) follows every round; a round cut
	// short by a lost lease or a stop saves nothing (its context ended).
	if err := a.saveState(rr.ctx); err != nil && rr.ctx.Err() == nil {
		a.log.Error("cannot save the agent state; the next round tries again", "round", r.ID, "err", err)
		a.mu.Lock()
		a.status.Errors = append(a.status.Errors, err.Error())
		a.mu.Unlock()
	}
	// The gauges move before the round counter, so that a scrape that
	// sees the round counted also sees its time and commit.
	if r.Result == history.RoundSucceeded {
		a.met.lastSuccess.Set(float64(r.FinishedAt.UnixNano()) / 1e9)
		a.met.lastCommit.Reset()
		a.met.lastCommit.WithLabelValues(r.Commit).Set(1)
	}
	a.met.rounds.WithLabelValues(string(r.Result)).Inc()
	a.notifyRound(r, obs)
	a.publishAppChanges(before, st)
	a.Publish(Event{Kind: EventRoundFinished, Round: r.ID, Trigger: r.Trigger, Commit: r.Commit, Result: string(r.Result), Message: r.Error})
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

// The rest are the round's helpers, in the order the steps use them.

// stepResult is the history record of step name, started at start, as it
// ends now.
func (a *Agent) stepResult(name string, start time.Time, status history.StepStatus, msg string) history.StepResult {
	return history.StepResult{Step: name, Status: status, Message: msg, Duration: deploy.Duration(a.clock.Now().Sub(start))}
}

// skipped is the history record of steps that did not run, and why.
func skipped(why string, steps ...string) []history.StepResult {
	out := make([]history.StepResult, 0, len(steps))
	for _, s := range steps {
		out = append(out, history.StepResult{Step: s, Status: history.StepSkipped, Message: why})
	}
	return out
}

// stepRecord turns a step the releaser reports into the round's history
// record of it.
func stepRecord(s release.StepReport) history.StepResult {
	st := history.StepOK
	switch s.Outcome {
	case release.StepFailed:
		st = history.StepFailed
	case release.StepSkipped:
		st = history.StepSkipped
	}
	return history.StepResult{Step: s.Name, Status: st, Message: s.Message, Duration: deploy.Duration(s.Duration)}
}

// specDiagnostics converts hcl diagnostics, making file names relative to
// the checkout root.
func specDiagnostics(ds hcl.Diagnostics, root string) []history.SpecDiagnostic {
	var out []history.SpecDiagnostic
	for _, d := range ds {
		sd := history.SpecDiagnostic{Summary: d.Summary, Detail: d.Detail, Severity: "error"}
		if d.Severity == hcl.DiagWarning {
			sd.Severity = "warning"
		}
		if d.Subject != nil {
			f := d.Subject.Filename
			if rel, err := filepath.Rel(root, f); err == nil && filepath.IsLocal(rel) {
				f = rel
			}
			sd.File, sd.Line, sd.Column = filepath.ToSlash(f), d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = append(out, sd)
	}
	return out
}

// goodState is the desired state in force: the newest commit whose spec
// was valid, with failed apps replaced by their previous versions.
type goodState struct {
	commit   string
	cfg      *spec.Config
	desired  plan.Desired
	digests  map[string]string // app → desired digest (first target wins)
	released map[string]string // app → digest released from this commit (no fallbacks)
	appErrs  map[string]string // app → release error
	holds    map[string]string // app → why it is held (failed, no previous version)
	secrets  func(string, string) map[string]string
}

// inForce returns the desired state in force, or nil before the first
// valid release.
func (a *Agent) inForce() *goodState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.good
}

// newGood merges a valid release with the previous good state: an app that
// failed to release keeps its previous desired version, or is held when it
// has none.
func (a *Agent) newGood(commit string, in *release.RoundInput, prev *goodState) *goodState {
	g := &goodState{commit: commit, cfg: in.Config, digests: map[string]string{}, released: map[string]string{},
		appErrs: map[string]string{}, holds: map[string]string{}}
	d := plan.Desired{Commit: commit}
	for _, dt := range in.Desired.Targets {
		nt := plan.DesiredTarget{Name: dt.Name, Type: dt.Type, Apps: slices.Clone(dt.Apps)}
		for _, app := range dt.Apps {
			g.released[app.Name] = app.Digest
		}
		d.Targets = append(d.Targets, nt)
	}
	for n, err := range in.AppErrors {
		g.appErrs[n] = err.Error()
	}
	for i := range d.Targets {
		dt := &d.Targets[i]
		has := map[string]bool{}
		for _, app := range dt.Apps {
			has[app.Name] = true
		}
		var want []string
		if t := in.Config.Target(dt.Name); t != nil {
			want = t.Apps
		}
		for _, n := range want {
			if has[n] || g.appErrs[n] == "" {
				continue
			}
			if old := prev.app(dt.Name, n); old != nil {
				dt.Apps = append(dt.Apps, *old)
				continue
			}
			g.holds[n] = "its release failed and there is no previous version to keep: " + g.appErrs[n]
		}
		for _, app := range dt.Apps {
			if _, ok := g.digests[app.Name]; !ok {
				g.digests[app.Name] = app.Digest
			}
		}
	}
	// Kept apps carry the secrets of the release they came from; no
	// chain of earlier states is retained.
	g.secrets = plan.SecretsFrom(d)
	g.desired = d
	return g
}

func (g *goodState) app(target, name string) *targets.DesiredApp {
	if g == nil {
		return nil
	}
	for _, dt := range g.desired.Targets {
		if dt.Name != target {
			continue
		}
		for i := range dt.Apps {
			if dt.Apps[i].Name == name {
				a := dt.Apps[i]
				return &a
			}
		}
	}
	return nil
}

func (g *goodState) holdOrKeep(app string) string {
	if h, ok := g.holds[app]; ok {
		return "held: " + h
	}
	return "keeps its previous version " + plan.ShortDigest(g.digests[app])
}

// appBackoff is the wait before retrying an app (or a release) that failed
// n times in a row: Interval doubling, capped at MaxBackoff, with jitter.
func (a *Agent) appBackoff(n int) time.Duration {
	d := a.opts.Interval << min(n-1, 20)
	return jitter(min(d, max(a.opts.MaxBackoff, a.opts.Interval)))
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// cloneRound returns a copy of r that shares no slices with it, for the
// status API while the round goroutine goes on appending.
func cloneRound(r *history.Round) *history.Round {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.SpecErrors = slices.Clone(r.SpecErrors)
	c.Apps = slices.Clone(r.Apps)
	return &c
}

// appStatus summarises each app from the desired state in force g, what
// the round observed (target → apps) and what it did (r.Apps).
func appStatus(r *history.Round, g *goodState, observed map[string][]targets.ObservedApp) []AppStatus {
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
	for target, obs := range observed {
		for _, o := range obs {
			if !o.Managed {
				continue
			}
			ts[key{o.Name, target}] = &AppTargetStatus{Target: target, Digest: o.Digest, Status: o.Status, Healthy: o.Healthy, RolledBack: o.RolledBack,
				Phase: string(o.EffectivePhase()), Owner: o.Owner, Message: o.Message}
		}
	}
	for _, rec := range r.Apps {
		if rec.Target == "" {
			continue
		}
		k := key{rec.App, rec.Target}
		t := ts[k]
		if t == nil {
			t = &AppTargetStatus{Target: rec.Target}
			ts[k] = t
		}
		t.Action, t.Result, t.Error, t.Detail, t.Pinned, t.Rollout = rec.Action, rec.Result, rec.Error, rec.Detail, rec.Pinned, rec.Rollout
		if rec.Result == string(plan.OutcomeApplied) {
			t.Digest, t.Healthy, t.Status, t.Phase = rec.Digest, rec.Action != string(plan.ActionDelete), "serving", string(targets.PhaseReady)
			if rec.Action == string(plan.ActionDelete) {
				t.Digest, t.Status, t.Phase = "", "deleted", ""
			}
		}
		if rec.Result == string(plan.OutcomeProgressing) {
			// As targets report it: while progressing, Digest is the
			// version being rolled out.
			t.Digest, t.Phase, t.Status, t.Healthy = rec.Digest, string(targets.PhaseProgressing), "progressing", false
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

// plannedChange summarises change ch of target for Status.Plan.
func plannedChange(target string, ch plan.Change) PlannedChange {
	pc := PlannedChange{Target: target, App: ch.App, Action: string(ch.Action), Reasons: slices.Clone(ch.Reasons), Objects: slices.Clone(ch.Objects)}
	if ch.Before != nil {
		pc.From = ch.Before.Digest
	}
	if ch.After != nil {
		pc.To = ch.After.Digest
	}
	return pc
}

// targetStatus says, for every target p planned, whether it answered.
func targetStatus(p *planned) []TargetStatus {
	var out []TargetStatus
	for _, name := range slices.Sorted(maps.Keys(p.tgts)) {
		ts := TargetStatus{Name: name, Reachable: true, Apps: len(p.obs[name])}
		if e, ok := p.tErrs[name]; ok {
			ts.Reachable, ts.Error = false, e
		} else if _, ok := p.obs[name]; !ok {
			ts.Reachable, ts.Error = false, "not observed this round (left out by --target, or not planned)"
		}
		out = append(out, ts)
	}
	return out
}
