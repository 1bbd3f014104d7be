package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/parallel"
	"github.com/ferry-wasm/ferry/targets"
)

// PlanOptions tune Compute. The zero value is the default for every
// field.
type PlanOptions struct {
	// Targets restricts the plan to these target names (ferry plan
	// -target). Empty means every target in the desired state. A name the
	// desired state does not have is an error diagnostic.
	Targets []string
	// Parallelism is how many targets are observed at once. Zero means 8.
	Parallelism int
	// ObserveTimeout bounds one target's Observe call. Zero means 30s.
	ObserveTimeout time.Duration
	// AdoptUnmanaged lets the plan update an app that the target runs but
	// ferry does not manage when the spec has an app of that name. False
	// (the default) makes such a clash an error: ferry never touches an
	// unmanaged app unless told to.
	AdoptUnmanaged bool
	// Source is the stable identity of the spec source (see SourceID;
	// ferry's commands always set it). On targets that record owners
	// (targets.OwnerRecorder) every app the plan deploys is recorded as
	// owned by OwnerOf(Source, target), and the plan deletes, updates or
	// keeps only apps of that owner: apps of other owners, and apps with
	// no recorded owner, are left alone. Empty means ownership is not
	// checked and every managed app counts as this spec's (the behaviour
	// before owners were recorded).
	Source string
	// Adopt lets the plan take over an app the spec names that the target
	// records under another owner, or under none (deployed before owners
	// were recorded): it is deployed and recorded as this spec's. False
	// (the default) makes such a clash an error diagnostic naming the
	// owner. Adopt implies AdoptUnmanaged.
	Adopt bool
	// ConfigOf, when set, returns the configuration of the version an app
	// runs now (typically read from the registry by running.Ref), so that
	// an update's reasons can name the configuration fields that change.
	// Nil means reasons only name the digests. An error becomes a warning.
	ConfigOf func(ctx context.Context, target string, running targets.ObservedApp) (*deploy.App, error)
	// DeleteReason is the reason a delete of a managed app gives. Empty
	// means "removed from the spec"; ferry destroy says "destroy".
	DeleteReason string
	// Now returns the plan's creation time. Nil means time.Now.
	Now func() time.Time
	// Logger receives debug records. Nil means no logging.
	Logger *slog.Logger
}

// Compute observes each desired target live, in parallel, and compares
// what runs there with what should, app by app:
//
//   - create: the app is not on the target ("not on the target" — a new app,
//     or drift: one removed by hand; without a state file the two look the
//     same).
//   - update: the target runs a different digest ("new digest D1 → D2", and
//     "config changed: …" when PlanOptions.ConfigOf is set; "drift: …" when
//     the running version is the target's previous version of the desired
//     one, i.e. it was rolled back), or runs the desired digest but reports
//     it unhealthy ("drift: unhealthy (…)"): the same version is deployed
//     again, which restarts it.
//   - wait: the target reports the app progressing (targets.PhaseProgressing)
//     towards exactly the desired digest, with the desired secrets: it is
//     rolling the version out, so nothing is sent ("progressing towards
//     D"). Progressing towards another digest is an update; degraded or
//     failed at the desired digest is drift, as any unhealthy app.
//   - no-op: the desired digest runs and is healthy. The digest of an app
//     artifact covers its configuration, so equal digests mean equal config;
//     a target that implements targets.Differ may still report drifted
//     objects ("drift: N objects differ on the target"), which makes it an
//     update. The objects are listed in Change.Objects (for updates too).
//   - on a target that implements targets.RolloutPreviewer (a fleet),
//     every change but a delete carries the target's preview in
//     Change.Rollout: the devices and waves a create or update would roll
//     out to, and the app's current rollout. An error becomes a warning.
//   - delete: the app is managed by ferry, owned by this spec and target
//     (see PlanOptions.Source), and the desired target no longer has it
//     ("removed from the spec"). Apps ferry does not manage, and apps of
//     another owner or of none, are never deleted; each gets a note in the
//     plan.
//
// A desired app whose name an unmanaged app, or an app of another owner
// (or of none), already uses is an error naming that owner (see
// PlanOptions.AdoptUnmanaged and PlanOptions.Adopt). A target that cannot be observed, is missing
// from tgts or has malformed desired apps makes its TargetPlan errored, and
// the plan not applyable; other targets are still planned.
//
// Everything is sorted (targets, changes, observed apps), so the same
// inputs give the same plan. Secret values are stripped from the plan.
//
// The returned plan is never nil. The error is non-nil only when the
// desired state itself is malformed (wrapping ErrInvalidDesired) or ctx
// ended; problems with single targets are diagnostics: check
// Plan.Applyable. Compute is safe for concurrent use.
func Compute(ctx context.Context, desired Desired, tgts map[string]targets.Target, opts PlanOptions) (*Plan, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := &Plan{
		Format:        formatName,
		FormatVersion: FormatVersion,
		CreatedAt:     now().UTC(),
		Commit:        desired.Commit,
		Targets:       []TargetPlan{},
	}
	log := parallel.LoggerOr(opts.Logger)

	seen := map[string]bool{}
	for _, dt := range desired.Targets {
		if dt.Name == "" {
			return p, fmt.Errorf("%w: a target has no name", ErrInvalidDesired)
		}
		if seen[dt.Name] {
			return p, fmt.Errorf("%w: target %q is listed twice", ErrInvalidDesired, dt.Name)
		}
		seen[dt.Name] = true
	}
	var selected []DesiredTarget
	if len(opts.Targets) == 0 {
		selected = slices.Clone(desired.Targets)
	} else {
		want := map[string]bool{}
		for _, n := range opts.Targets {
			want[n] = true
			if !seen[n] {
				p.Diagnostics = append(p.Diagnostics, errorDiag(n, "", "No such target",
					"Target %q was selected but the spec has no target of that name.", n))
			}
		}
		for _, dt := range desired.Targets {
			if want[dt.Name] {
				selected = append(selected, dt)
			}
		}
	}
	slices.SortFunc(selected, func(a, b DesiredTarget) int { return strings.Compare(a.Name, b.Name) })

	p.Targets = make([]TargetPlan, len(selected))
	skipped := parallel.ForEach(ctx, len(selected), parallel.OrDefault(opts.Parallelism, 8), func(i int) {
		p.Targets[i] = planTarget(ctx, selected[i], tgts[selected[i].Name], opts, log)
	})
	for _, i := range skipped {
		p.Targets[i] = TargetPlan{Name: selected[i].Name, Type: selected[i].Type, Errored: true,
			Observed: []targets.ObservedApp{}, Changes: []Change{},
			Diagnostics: Diagnostics{errorDiag(selected[i].Name, "", "Not planned", "Planning was canceled: %v.", ctx.Err())}}
	}
	return p, ctx.Err()
}

func planTarget(ctx context.Context, dt DesiredTarget, t targets.Target, opts PlanOptions, log *slog.Logger) TargetPlan {
	tp := TargetPlan{Name: dt.Name, Type: dt.Type, Observed: []targets.ObservedApp{}, Changes: []Change{}}
	fail := func(d Diagnostic) TargetPlan {
		tp.Errored = true
		tp.Diagnostics = append(tp.Diagnostics, d)
		return tp
	}
	if t == nil {
		return fail(errorDiag(dt.Name, "", "No such target",
			"No target implementation named %q was configured, so it cannot be observed (%v).", dt.Name, ErrNoTarget))
	}

	// Desired apps: validate, sort, strip secrets (keeping their keyed
	// hashes when the target reports hashes to compare with).
	// Ownership (owner.go): on a target that records owners, this plan's
	// apps are owned by own; "" means ownership is not checked.
	own := ""
	if or, ok := t.(targets.OwnerRecorder); ok && or.RecordsOwners() && opts.Source != "" {
		own = OwnerOf(opts.Source, dt.Name)
	}
	desired := make([]targets.DesiredApp, 0, len(dt.Apps))
	names := map[string]bool{}
	wantHashes := desiredSecretHashes(t, dt.Apps) // secrets.go
	for _, a := range dt.Apps {
		if ds := checkDesiredApp(dt.Name, a); len(ds) > 0 {
			tp.Diagnostics = append(tp.Diagnostics, ds...)
			tp.Errored = true
		}
		if a.Name == "" {
			continue
		}
		if a.Name != "" && names[a.Name] {
			tp.Diagnostics = append(tp.Diagnostics, errorDiag(dt.Name, a.Name, "Duplicate app",
				"App %q is listed twice for this target.", a.Name))
			tp.Errored = true
			continue
		}
		names[a.Name] = true
		a = StripSecrets(a)
		a.Owner = own
		desired = append(desired, a)
	}
	slices.SortFunc(desired, func(a, b targets.DesiredApp) int { return strings.Compare(a.Name, b.Name) })

	octx, cancel := context.WithTimeout(ctx, parallel.OrDefault(opts.ObserveTimeout, 30*time.Second))
	start := time.Now()
	observed, err := t.Observe(octx)
	cancel()
	if err != nil {
		detail := fmt.Sprintf("Reading what target %q runs failed: %v.", dt.Name, err)
		if errors.Is(err, targets.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			detail += " This may be transient; plan again later."
		}
		return fail(Diagnostic{Severity: SeverityError, Target: dt.Name, Summary: "Cannot observe target", Detail: detail})
	}
	log.Debug("observed target", "target", dt.Name, "apps", len(observed), "took", time.Since(start))
	observed = slices.Clone(observed)
	slices.SortFunc(observed, func(a, b targets.ObservedApp) int { return strings.Compare(a.Name, b.Name) })
	tp.Observed = observed
	tp.Fingerprint = Fingerprint(observed)
	obs := make(map[string]*targets.ObservedApp, len(observed))
	for i := range observed {
		o := &observed[i]
		if _, dup := obs[o.Name]; dup {
			return fail(errorDiag(dt.Name, o.Name, "Target reports an app twice",
				"The target's observed state lists app %q more than once; it cannot be planned against.", o.Name))
		}
		obs[o.Name] = o
	}

	for i := range desired {
		want := &desired[i]
		o := obs[want.Name]
		ch := Change{App: want.Name, After: want}
		foreign := o != nil && o.Managed && own != "" && o.Owner != own
		if foreign && !opts.Adopt {
			tp.Errored = true
			tp.Diagnostics = append(tp.Diagnostics, ownerClash(dt.Name, own, o))
			continue
		}
		switch {
		case o == nil:
			ch.Action = ActionCreate
			ch.Reasons = []string{"not on the target"}
		case foreign:
			// Adopted (PlanOptions.Adopt): deployed as this spec's, even
			// at the same digest, so that the target records the owner.
			ch.Action = ActionUpdate
			ch.Before = cloneObserved(o)
			ch.Reasons = []string{"adopting an app " + ownerPhrase(o.Owner)}
			if o.Digest != want.Digest {
				ch.Reasons = append(ch.Reasons, fmt.Sprintf("new digest %s → %s", ShortDigest(o.Digest), ShortDigest(want.Digest)))
			}
		case !o.Managed && !opts.AdoptUnmanaged && !opts.Adopt:
			tp.Errored = true
			tp.Diagnostics = append(tp.Diagnostics, errorDiag(dt.Name, want.Name, "App exists but is not managed by ferry",
				"The target runs an app named %q (%s) that ferry did not deploy, and ferry never replaces an unmanaged app. Remove or rename it on the target, rename the app in the spec, or plan with adoption enabled.",
				want.Name, ShortDigest(o.Digest)))
			continue
		case o.Digest != want.Digest:
			ch.Action = ActionUpdate
			ch.Before = cloneObserved(o)
			ch.Reasons = []string{fmt.Sprintf("new digest %s → %s", ShortDigest(o.Digest), ShortDigest(want.Digest))}
			if o.Previous == want.Digest {
				ch.Reasons = append(ch.Reasons, "drift: the target runs its previous version; the desired version was rolled back or replaced by hand")
			}
			if !o.Managed {
				ch.Reasons = append(ch.Reasons, "adopting an app ferry did not deploy")
			}
			if opts.ConfigOf != nil {
				old, err := opts.ConfigOf(ctx, dt.Name, *o)
				switch {
				case err != nil:
					tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityWarning, Target: dt.Name, App: want.Name,
						Summary: "Cannot read running configuration",
						Detail:  fmt.Sprintf("The configuration of the running version could not be read to list what changes: %v.", err)})
				case old != nil:
					if fields := ConfigChanges(*old, want.App); len(fields) > 0 {
						ch.Reasons = append(ch.Reasons, "config changed: "+strings.Join(fields, ", "))
					}
				}
			}
		case o.EffectivePhase() == targets.PhaseProgressing && o.Managed &&
			len(secretChanges(o.SecretHashes, wantHashes[want.Name])) == 0:
			ch.Action = ActionWait
			ch.Before = cloneObserved(o)
			r := "progressing towards " + ShortDigest(want.Digest)
			if o.Message != "" {
				r += " (" + o.Message + ")"
			}
			ch.Reasons = []string{r + "; waiting for the target's rollout"}
		case !o.Healthy:
			ch.Action = ActionUpdate
			ch.Before = cloneObserved(o)
			r := "drift: unhealthy"
			if o.Status != "" {
				r += " (status " + o.Status
				if o.Message != "" {
					r += ": " + o.Message
				}
				r += ")"
			}
			ch.Reasons = []string{r + "; redeploying " + ShortDigest(want.Digest)}
			if !o.Managed {
				ch.Reasons = append(ch.Reasons, "adopting an app ferry did not deploy")
			}
		case !o.Managed:
			ch.Action = ActionUpdate
			ch.Before = cloneObserved(o)
			ch.Reasons = []string{"adopting an app ferry did not deploy (same digest)"}
		case len(secretChanges(o.SecretHashes, wantHashes[want.Name])) > 0:
			ch.Action = ActionUpdate
			ch.Before = cloneObserved(o)
			ch.Reasons = secretChanges(o.SecretHashes, wantHashes[want.Name])
		default:
			ch.Action = ActionNoop
			ch.Before = cloneObserved(o)
		}
		if d, ok := t.(targets.Differ); ok && (ch.Action == ActionNoop || ch.Action == ActionUpdate) {
			objs, err := d.Diff(ctx, *want)
			switch {
			case err != nil:
				tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityWarning, Target: dt.Name, App: want.Name,
					Summary: "Cannot diff the app's objects",
					Detail:  fmt.Sprintf("The target could not compare the app's objects with the desired version, so drift of single objects is not shown: %v.", err)})
			case len(objs) > 0:
				ch.Objects = objs
				if ch.Action == ActionNoop {
					ch.Action = ActionUpdate
					ch.Reasons = []string{fmt.Sprintf("drift: %d %s on the target; redeploying %s",
						len(objs), plural(len(objs), "object differs", "objects differ"), ShortDigest(want.Digest))}
				}
			}
		}
		if rp, ok := t.(targets.RolloutPreviewer); ok {
			pv, err := rp.PreviewRollout(ctx, *want)
			if err != nil {
				tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityWarning, Target: dt.Name, App: want.Name,
					Summary: "Cannot preview the rollout",
					Detail:  fmt.Sprintf("The target could not say how it would roll this version out: %v.", err)})
			} else {
				ch.Rollout = &pv
			}
		}
		if ck, ok := t.(targets.Checker); ok && (ch.Action == ActionCreate || ch.Action == ActionUpdate) {
			if err := ck.Check(ctx, *want); err != nil {
				tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityWarning, Target: dt.Name, App: want.Name,
					Summary: "The target will refuse this version",
					Detail:  fmt.Sprintf("%v. Applying it fails, and the app keeps what the target runs now.", err)})
			}
		}
		tp.Changes = append(tp.Changes, ch)
	}
	keep := map[string]bool{}
	for _, k := range dt.Keep {
		if !names[k] {
			keep[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keep)) {
		detail := fmt.Sprintf("App %q is not in this desired state, so whatever runs under that name is neither updated nor deleted.", k)
		if o := obs[k]; o != nil {
			detail = fmt.Sprintf("App %q is not in this desired state; it keeps running %s, neither updated nor deleted.", k, ShortDigest(o.Digest))
		}
		tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityNote, Target: dt.Name, App: k,
			Summary: "App kept as it runs", Detail: detail})
	}
	for i := range observed {
		o := &observed[i]
		if names[o.Name] || keep[o.Name] {
			continue
		}
		if !o.Managed {
			tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityNote, Target: dt.Name, App: o.Name,
				Summary: "Unmanaged app left alone",
				Detail:  fmt.Sprintf("App %q was not deployed by ferry; ferry never changes or deletes it.", o.Name)})
			continue
		}
		if own != "" && o.Owner != own {
			tp.Diagnostics = append(tp.Diagnostics, Diagnostic{Severity: SeverityNote, Target: dt.Name, App: o.Name,
				Summary: "App of another owner left alone",
				Detail: fmt.Sprintf("App %q is %s, not by this spec (%s); this plan never changes or deletes it.",
					o.Name, ownerPhrase(o.Owner), own)})
			continue
		}
		tp.Changes = append(tp.Changes, Change{App: o.Name, Action: ActionDelete,
			Reasons: []string{parallel.OrDefault(opts.DeleteReason, "removed from the spec")}, Before: cloneObserved(o)})
	}
	slices.SortFunc(tp.Changes, func(a, b Change) int { return strings.Compare(a.App, b.App) })
	return tp
}

// ownerClash is the error of a desired app whose name an app of another
// owner (or of none) uses on the target.
func ownerClash(target, own string, o *targets.ObservedApp) Diagnostic {
	if o.Owner == "" {
		return errorDiag(target, o.Name, "App has no owner",
			"The target runs an app named %q (%s) that was deployed before ferry recorded owners, so it is not known to be this spec's (%s). ferry never takes over an app it cannot tell is its own: plan with -adopt to take it over, or rename the app in the spec.",
			o.Name, ShortDigest(o.Digest), own)
	}
	return errorDiag(target, o.Name, "App is owned by another spec",
		"The target runs an app named %q (%s) owned by %q, not by this spec (%s). ferry never replaces another spec's app: rename the app in one of the specs, remove it from the other one, or plan with -adopt to take it over.",
		o.Name, ShortDigest(o.Digest), o.Owner, own)
}

// ownerPhrase says who owns an app, for reasons and notes.
func ownerPhrase(owner string) string {
	if owner == "" {
		return "deployed with no recorded owner (before owners were recorded)"
	}
	return fmt.Sprintf("owned by %q", owner)
}

func cloneObserved(o *targets.ObservedApp) *targets.ObservedApp {
	c := *o
	return &c
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
