package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/targets"
)

// OnFailure says what Apply does when a new version of an app fails.
type OnFailure string

const (
	// OnFailureRollBack (the default) makes sure the previous version runs
	// again. A target's Put already keeps the previous version serving
	// when the new one fails its health check; when the target reports
	// the failed new version running anyway, Apply switches back with
	// targets.RollBacker, and removes a failed new app that did not exist
	// before.
	OnFailureRollBack OnFailure = "rollback"
	// OnFailureLeave leaves the target as the failed Put left it.
	OnFailureLeave OnFailure = "leave"
)

// AppPolicy is the rollout policy of one app, from the spec. Zero fields
// take ApplyOptions' values.
type AppPolicy struct {
	// Timeout bounds deploying the app until it reports healthy.
	Timeout time.Duration
	// OnFailure says what to do when it does not.
	OnFailure OnFailure
}

// ApplyOptions tune Apply. The zero value is the default for every field.
type ApplyOptions struct {
	// Parallelism is how many targets are applied at once. Zero means 4.
	Parallelism int
	// AppParallelism is how many apps of one target are changed at once.
	// Zero means 4.
	AppParallelism int
	// SecretsFor returns the secret values of an app, given to the target
	// with the app (plans never hold them; see SecretsFrom). Nil means no
	// secrets. It may be called concurrently.
	SecretsFor func(target, app string) map[string]string
	// Timeout bounds one app's deployment, health wait included. Zero
	// means 5 minutes.
	Timeout time.Duration
	// OnFailure is the default failure policy. Empty means
	// OnFailureRollBack.
	OnFailure OnFailure
	// PolicyFor, when set, returns an app's own policy (from the spec's
	// rollout block); its zero fields fall back to Timeout and OnFailure.
	PolicyFor func(target, app string) AppPolicy
	// ObserveTimeout bounds each Observe call. Zero means 30 seconds.
	ObserveTimeout time.Duration
	// LockDir, when set, is a directory where Apply takes a flock(2) per
	// target, so that two applies on this machine never interleave on one
	// target, across processes; the kernel releases it if the process
	// dies. Targets that implement targets.Locker are also locked through it.
	// Empty means no local lock file.
	LockDir string
	// LockTimeout bounds the wait for the targets' apply locks (LockDir
	// and targets.Locker); past it Apply fails with ErrLock, changing nothing.
	// Zero means waiting as long as ctx allows.
	LockTimeout time.Duration
	// Holder describes this apply to a target's targets.Locker. Empty means
	// "ferry pid N on HOST".
	Holder string
	// Progress, when set, is called for each Event. Calls are serialised
	// (never concurrent) and must return quickly.
	Progress func(Event)
	// Logger receives debug and info records. Nil means no logging.
	Logger *slog.Logger
}

// Outcome is how one app's change ended.
type Outcome string

const (
	// OutcomeApplied means the change was made and, for a create or update,
	// the target reported the new version healthy.
	OutcomeApplied Outcome = "applied"
	// OutcomeFailed means the change was attempted and failed; see Error,
	// RolledBack and Detail.
	OutcomeFailed Outcome = "failed"
	// OutcomeSkipped means the change was not attempted (the apply was
	// canceled first).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeUnchanged is the outcome of a no-op.
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeProgressing means the target accepted the new version and is
	// still rolling it out (targets.PutResult.Progressing), or, for a
	// wait, was already rolling out the desired version and was left to
	// it. It is not a failure: a later plan waits for the rollout or, if
	// it failed, deploys again. A ferry-host never reports it.
	OutcomeProgressing Outcome = "progressing"
)

// EventKind names what an Event reports.
type EventKind string

const (
	// EventLocked: the target's apply lock is held.
	EventLocked EventKind = "locked"
	// EventChecked: the target's observed state matches the plan.
	EventChecked EventKind = "checked"
	// EventStarted: an app's change started.
	EventStarted EventKind = "started"
	// EventRollBack: a failed app is being rolled back.
	EventRollBack EventKind = "rollback"
	// EventFinished: an app's change finished; see Outcome.
	EventFinished EventKind = "finished"
)

// Event reports progress of Apply, for a terminal or a log.
type Event struct {
	// Time is when it happened.
	Time time.Time
	// Kind says what happened.
	Kind EventKind
	// Target is the target concerned.
	Target string
	// App is the app concerned; empty for target events.
	App string
	// Action is the app's planned action.
	Action Action
	// Outcome is set on EventFinished.
	Outcome Outcome
	// Duration is set on EventFinished: how long the change took.
	Duration time.Duration
	// Message is a short human description; never holds secrets.
	Message string
}

// AppResult is how one app's change went.
type AppResult struct {
	// App is the app's name.
	App string `json:"app"`
	// Action is the planned action.
	Action Action `json:"action"`
	// Outcome is applied, progressing, failed, skipped or unchanged.
	Outcome Outcome `json:"outcome"`
	// Digest is the digest the plan wanted (empty for a delete).
	Digest string `json:"digest,omitempty"`
	// Previous is the digest the app ran when the plan was computed
	// (empty for a create).
	Previous string `json:"previous,omitempty"`
	// Duration is how long the change took, rollback included.
	Duration deploy.Duration `json:"duration"`
	// Error is the failure, as text; empty unless Outcome is failed or
	// skipped.
	Error string `json:"error,omitempty"`
	// Err is the failure as an error value (not serialised).
	Err error `json:"-"`
	// RolledBack is true when, after a failure, the app is known to run
	// its previous version again (or, for a failed create, to be absent
	// again).
	RolledBack bool `json:"rolled_back,omitempty"`
	// RolledBackTo is the digest the app runs after the rollback; empty
	// for a failed create that was removed.
	RolledBackTo string `json:"rolled_back_to,omitempty"`
	// Detail explains what happened after a failure ("the previous
	// version kept serving", "switched back to sha256:…").
	Detail string `json:"detail,omitempty"`
}

// TargetResult is how one target's changes went.
type TargetResult struct {
	// Name is the target's name.
	Name string `json:"name"`
	// Apps holds one result per change in the plan, sorted by app name.
	Apps []AppResult `json:"apps"`
	// Diagnostics are messages about this target.
	Diagnostics Diagnostics `json:"diagnostics,omitempty"`
}

// ApplyResult is what Apply did. It is returned even when some changes
// failed.
type ApplyResult struct {
	// Commit is the plan's commit.
	Commit string `json:"commit"`
	// StartedAt and FinishedAt bound the apply (UTC).
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Targets holds one result per target in the plan, sorted by name.
	Targets []TargetResult `json:"targets"`
	// Diagnostics are messages about the apply as a whole.
	Diagnostics Diagnostics `json:"diagnostics,omitempty"`
}

// Count returns how many app results have outcome o.
func (r *ApplyResult) Count(o Outcome) int {
	n := 0
	for _, t := range r.Targets {
		for _, a := range t.Apps {
			if a.Outcome == o {
				n++
			}
		}
	}
	return n
}

// App returns the result for app on target, or nil.
func (r *ApplyResult) App(target, app string) *AppResult {
	for i := range r.Targets {
		if r.Targets[i].Name != target {
			continue
		}
		for j := range r.Targets[i].Apps {
			if r.Targets[i].Apps[j].App == app {
				return &r.Targets[i].Apps[j]
			}
		}
	}
	return nil
}

// Apply makes the targets match plan. Before it changes anything it:
//
//  1. refuses a plan that is not applyable (Plan.Applyable) or names a
//     target missing from tgts (ErrNoTarget);
//  2. takes every target's apply lock (ApplyOptions.LockDir and targets.Locker), in
//     name order;
//  3. observes every target again and refuses the whole plan with a
//     *StaleError (wrapping ErrStalePlan) that says what moved if any
//     target's fingerprint differs from the one in the plan.
//
// Then it applies targets in parallel (ApplyOptions.Parallelism) and, in
// each, the apps' changes in parallel (ApplyOptions.AppParallelism):
// creates and updates first, then deletes. A failing app does not stop the
// others. A create or update succeeds when the target's Put returns: once
// the new version is healthy (OutcomeApplied) or, on an asynchronous
// target, once it accepted the version and is rolling it out
// (OutcomeProgressing; the next plan waits for it). A wait (ActionWait)
// sends nothing and ends progressing too. On failure the app's policy
// (OnFailure) decides whether the previous version is restored, and the
// AppResult says what runs now.
//
// Apply keeps no local state: the targets are the truth. If the process
// dies mid-apply, a new plan computed against the targets shows what is
// left to do, and applying it converges.
//
// The result is nil only when Apply refused before acting (then the error
// says why); otherwise it holds every change's outcome, and the error wraps
// ErrApplyFailed when any change failed or was skipped. Apply is safe for
// concurrent use; concurrent applies to one target are serialised only by
// its locks (without them the later one usually finds the plan stale).
func Apply(ctx context.Context, plan *Plan, tgts map[string]targets.Target, opts ApplyOptions) (*ApplyResult, error) {
	if err := plan.Applyable(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(plan.Targets))
	for _, tp := range plan.Targets {
		if tgts[tp.Name] == nil {
			return nil, fmt.Errorf("%w: the plan has target %q but it is not configured", ErrNoTarget, tp.Name)
		}
		names = append(names, tp.Name)
	}
	slices.Sort(names)
	a := &applier{opts: opts, tgts: tgts, log: parallel.LoggerOr(opts.Logger)}

	holder := opts.Holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = fmt.Sprintf("ferry pid %d on %s", os.Getpid(), host)
	}
	lctx, cancelLock := ctx, context.CancelFunc(func() {})
	if opts.LockTimeout > 0 {
		lctx, cancelLock = context.WithTimeout(ctx, opts.LockTimeout)
	}
	release, err := lockTargets(lctx, names, tgts, opts.LockDir, holder)
	cancelLock()
	if err != nil {
		return nil, err
	}
	defer release()
	for _, n := range names {
		a.emit(Event{Kind: EventLocked, Target: n, Message: "apply lock held"})
	}

	if err := a.checkFresh(ctx, plan); err != nil {
		return nil, err
	}

	res := &ApplyResult{Commit: plan.Commit, StartedAt: time.Now().UTC(), Targets: make([]TargetResult, len(plan.Targets))}
	skipped := parallel.ForEach(ctx, len(plan.Targets), parallel.OrDefault(opts.Parallelism, 4), func(i int) {
		res.Targets[i] = a.applyTarget(ctx, &plan.Targets[i])
	})
	for _, i := range skipped {
		res.Targets[i] = skipTarget(&plan.Targets[i], ctx.Err())
	}
	slices.SortFunc(res.Targets, func(x, y TargetResult) int { return strings.Compare(x.Name, y.Name) })
	res.FinishedAt = time.Now().UTC()

	failed, skippedN := res.Count(OutcomeFailed), res.Count(OutcomeSkipped)
	if failed+skippedN > 0 {
		return res, fmt.Errorf("%w: %d failed, %d skipped, %d applied", ErrApplyFailed, failed, skippedN, res.Count(OutcomeApplied))
	}
	return res, nil
}

type applier struct {
	opts   ApplyOptions
	tgts   map[string]targets.Target
	log    *slog.Logger
	emitMu sync.Mutex
}

func (a *applier) emit(e Event) {
	if a.opts.Progress == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	a.emitMu.Lock()
	defer a.emitMu.Unlock()
	a.opts.Progress(e)
}

func (a *applier) observe(ctx context.Context, t targets.Target) ([]targets.ObservedApp, error) {
	octx, cancel := context.WithTimeout(ctx, parallel.OrDefault(a.opts.ObserveTimeout, 30*time.Second))
	defer cancel()
	return t.Observe(octx)
}

// checkFresh re-observes every target of the plan and returns a *StaleError
// when any fingerprint moved, or an error when a target cannot be read.
func (a *applier) checkFresh(ctx context.Context, plan *Plan) error {
	stale := make([]*StaleTarget, len(plan.Targets))
	errs := make([]error, len(plan.Targets))
	parallel.ForEach(ctx, len(plan.Targets), parallel.OrDefault(a.opts.Parallelism, 4), func(i int) {
		tp := &plan.Targets[i]
		now, err := a.observe(ctx, a.tgts[tp.Name])
		if err != nil {
			errs[i] = fmt.Errorf("sync: apply: cannot check that target %s is unchanged since the plan: %w", tp.Name, err)
			return
		}
		fp := Fingerprint(now)
		if fp != tp.Fingerprint {
			stale[i] = &StaleTarget{Name: tp.Name, PlanFingerprint: tp.Fingerprint, Fingerprint: fp, Moves: describeMoves(tp.Observed, now)}
			return
		}
		a.emit(Event{Kind: EventChecked, Target: tp.Name, Message: "observed state unchanged since the plan"})
	})
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sync: apply: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var se StaleError
	for _, s := range stale {
		if s != nil {
			se.Targets = append(se.Targets, *s)
		}
	}
	if len(se.Targets) > 0 {
		return &se
	}
	return nil
}

func skipTarget(tp *TargetPlan, cause error) TargetResult {
	tr := TargetResult{Name: tp.Name, Apps: make([]AppResult, 0, len(tp.Changes))}
	for _, ch := range tp.Changes {
		r := baseResult(ch)
		switch ch.Action {
		case ActionNoop:
			r.Outcome = OutcomeUnchanged
		case ActionWait:
			r.Outcome = OutcomeProgressing
		default:
			r.Outcome, r.Err = OutcomeSkipped, fmt.Errorf("not attempted: %w", cause)
			r.Error = r.Err.Error()
		}
		tr.Apps = append(tr.Apps, r)
	}
	return tr
}

func baseResult(ch Change) AppResult {
	r := AppResult{App: ch.App, Action: ch.Action}
	if ch.After != nil {
		r.Digest = ch.After.Digest
	}
	if ch.Before != nil {
		r.Previous = ch.Before.Digest
	}
	return r
}

func (a *applier) applyTarget(ctx context.Context, tp *TargetPlan) TargetResult {
	t := a.tgts[tp.Name]
	tr := TargetResult{Name: tp.Name, Apps: make([]AppResult, len(tp.Changes))}
	var puts, dels []int
	for i, ch := range tp.Changes {
		switch ch.Action {
		case ActionCreate, ActionUpdate:
			puts = append(puts, i)
		case ActionDelete:
			dels = append(dels, i)
		case ActionWait:
			r := baseResult(ch)
			r.Outcome = OutcomeProgressing
			r.Detail = "nothing sent: the target was already rolling out this version"
			tr.Apps[i] = r
		default:
			r := baseResult(ch)
			r.Outcome = OutcomeUnchanged
			tr.Apps[i] = r
		}
	}
	// Puts first, so that traffic has somewhere to go before old apps
	// leave; then deletes.
	for _, group := range [][]int{puts, dels} {
		skipped := parallel.ForEach(ctx, len(group), parallel.OrDefault(a.opts.AppParallelism, 4), func(k int) {
			i := group[k]
			tr.Apps[i] = a.applyChange(ctx, tp.Name, t, tp.Changes[i])
		})
		for _, k := range skipped {
			r := baseResult(tp.Changes[group[k]])
			r.Outcome, r.Err = OutcomeSkipped, fmt.Errorf("not attempted: %w", ctx.Err())
			r.Error = r.Err.Error()
			tr.Apps[group[k]] = r
		}
	}
	return tr
}

func (a *applier) policy(target, app string) AppPolicy {
	var p AppPolicy
	if a.opts.PolicyFor != nil {
		p = a.opts.PolicyFor(target, app)
	}
	p.Timeout = parallel.OrDefault(p.Timeout, parallel.OrDefault(a.opts.Timeout, 5*time.Minute))
	p.OnFailure = parallel.OrDefault(p.OnFailure, parallel.OrDefault(a.opts.OnFailure, OnFailureRollBack))
	return p
}

func (a *applier) applyChange(ctx context.Context, target string, t targets.Target, ch Change) AppResult {
	r := baseResult(ch)
	start := time.Now()
	a.emit(Event{Kind: EventStarted, Target: target, App: ch.App, Action: ch.Action})
	var err error
	var put targets.PutResult
	switch ch.Action {
	case ActionDelete:
		err = t.Delete(ctx, ch.App)
		if err != nil {
			err = fmt.Errorf("delete %s: %w", ch.App, err)
		}
	case ActionCreate, ActionUpdate:
		pol := a.policy(target, ch.App)
		want := *ch.After
		want.Secrets = nil
		if a.opts.SecretsFor != nil {
			want.Secrets = a.opts.SecretsFor(target, ch.App)
		}
		pctx, cancel := context.WithTimeout(ctx, pol.Timeout)
		put, err = t.Put(pctx, want)
		if err == nil {
			switch put.Phase {
			case "", targets.PhaseReady, targets.PhaseProgressing:
			default:
				err = fmt.Errorf("the target accepted it but reports it %s", put.Phase)
				if put.Message != "" {
					err = fmt.Errorf("%w: %s", err, put.Message)
				}
			}
		}
		timedOut := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil {
			if timedOut {
				err = fmt.Errorf("deploy %s %s: not healthy within %v: %w", ch.App, ShortDigest(want.Digest), pol.Timeout, err)
			} else {
				err = fmt.Errorf("deploy %s %s: %w", ch.App, ShortDigest(want.Digest), err)
			}
			if ctx.Err() != nil {
				r.Detail = "apply canceled; the target keeps whichever version it reached, and a new plan shows it"
			} else {
				a.emit(Event{Kind: EventRollBack, Target: target, App: ch.App, Action: ch.Action, Message: string(pol.OnFailure)})
				a.afterFailure(ctx, t, ch, pol, &r)
			}
		}
	}
	r.Duration = deploy.Duration(time.Since(start))
	if err != nil {
		r.Outcome, r.Err, r.Error = OutcomeFailed, err, err.Error()
		a.log.Info("app change failed", "target", target, "app", ch.App, "action", ch.Action, "err", err, "rolled_back", r.RolledBack)
	} else if put.Progressing() {
		r.Outcome = OutcomeProgressing
		r.Detail = "accepted; the target is rolling it out"
		if put.Message != "" {
			r.Detail += " (" + put.Message + ")"
		}
		a.log.Debug("app change accepted, progressing", "target", target, "app", ch.App, "action", ch.Action, "took", r.Duration.Std())
	} else {
		r.Outcome = OutcomeApplied
		a.log.Debug("app change applied", "target", target, "app", ch.App, "action", ch.Action, "took", r.Duration.Std())
	}
	a.emit(Event{Kind: EventFinished, Target: target, App: ch.App, Action: ch.Action, Outcome: r.Outcome, Duration: r.Duration.Std(), Message: r.Detail})
	return r
}

// afterFailure finds out what the target runs after a failed Put and, when
// the policy says so, restores the previous state. It records the result in
// r.RolledBack, r.RolledBackTo and r.Detail.
func (a *applier) afterFailure(ctx context.Context, t targets.Target, ch Change, pol AppPolicy, r *AppResult) {
	rctx, cancel := context.WithTimeout(ctx, parallel.OrDefault(a.opts.ObserveTimeout, 30*time.Second)+pol.Timeout)
	defer cancel()
	prev, want := r.Previous, r.Digest
	cur, err := a.observeApp(rctx, t, ch.App)
	if err != nil {
		r.Detail = fmt.Sprintf("cannot tell what runs now: %v", err)
		return
	}
	switch {
	case prev != "" && prev == want:
		r.Detail = fmt.Sprintf("redeploying %s failed; nothing to roll back to", ShortDigest(want))
		if cur == nil {
			r.Detail += "; the app no longer runs on the target"
		}
	case cur == nil && prev == "":
		r.RolledBack = true
		r.Detail = "the new app was not created; nothing runs under its name"
	case cur == nil:
		r.Detail = fmt.Sprintf("the app no longer runs on the target (it ran %s)", ShortDigest(prev))
	case cur.Digest == prev:
		r.RolledBack, r.RolledBackTo = true, prev
		r.Detail = fmt.Sprintf("rolled back to %s: the previous version kept serving", ShortDigest(prev))
	case cur.Digest == want && pol.OnFailure == OnFailureLeave:
		r.Detail = fmt.Sprintf("the failed version %s was left in place (policy %s)", ShortDigest(want), OnFailureLeave)
	case cur.Digest == want && prev == "":
		if err := t.Delete(rctx, ch.App); err != nil {
			r.Detail = fmt.Sprintf("the failed new app could not be removed: %v", err)
			return
		}
		r.RolledBack = true
		r.Detail = "rolled back: the failed new app was removed"
	case cur.Digest == want:
		rb, ok := t.(targets.RollBacker)
		if !ok {
			r.Detail = fmt.Sprintf("the failed version %s runs and the target cannot roll back to %s", ShortDigest(want), ShortDigest(prev))
			return
		}
		if cur.Previous != "" && cur.Previous != prev {
			r.Detail = fmt.Sprintf("the failed version %s runs; not rolling back because the target's previous version is %s, not %s",
				ShortDigest(want), ShortDigest(cur.Previous), ShortDigest(prev))
			return
		}
		if err := rb.RollBack(rctx, ch.App); err != nil {
			r.Detail = fmt.Sprintf("rolling back to %s failed: %v", ShortDigest(prev), err)
			return
		}
		after, err := a.observeApp(rctx, t, ch.App)
		switch {
		case err != nil:
			r.Detail = fmt.Sprintf("rolled back to %s, but cannot confirm: %v", ShortDigest(prev), err)
		case after == nil || after.Digest != prev:
			got := "nothing"
			if after != nil {
				got = ShortDigest(after.Digest)
			}
			r.Detail = fmt.Sprintf("asked the target to roll back to %s, but it runs %s", ShortDigest(prev), got)
		default:
			r.RolledBack, r.RolledBackTo = true, prev
			r.Detail = fmt.Sprintf("rolled back to %s: switched back from the failed version", ShortDigest(prev))
		}
	default:
		r.Detail = fmt.Sprintf("the target runs %s, neither the previous version %s nor the new one", ShortDigest(cur.Digest), ShortDigest(prev))
	}
}

// observeApp returns what t runs under name (nil: nothing): one read where
// t is a targets.AppObserver, else from the listing of the whole target.
func (a *applier) observeApp(ctx context.Context, t targets.Target, name string) (*targets.ObservedApp, error) {
	if ao, ok := t.(targets.AppObserver); ok {
		octx, cancel := context.WithTimeout(ctx, parallel.OrDefault(a.opts.ObserveTimeout, 30*time.Second))
		defer cancel()
		return ao.ObserveApp(octx, name)
	}
	obs, err := a.observe(ctx, t)
	if err != nil {
		return nil, err
	}
	for i := range obs {
		if obs[i].Name == name {
			return &obs[i], nil
		}
	}
	return nil, nil
}
