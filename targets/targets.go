package targets

import (
	"context"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// Target is one place apps run. Implementations are safe for concurrent use
// by multiple goroutines, each working on a different app.
type Target interface {
	// Observe returns every app the target runs now, managed by ferry or
	// not. An error means the target could not be read; retrying may help
	// when errors.Is(err, ErrUnavailable).
	Observe(ctx context.Context) ([]ObservedApp, error)
	// Put deploys or updates one app to exactly want. It returns once the
	// target either reports the new version healthy (PutResult.Phase
	// PhaseReady, or empty) or has accepted it and is rolling it out
	// (PhaseProgressing: a Kubernetes Deployment whose pods are being
	// replaced, a fleet rollout that takes minutes); a later Observe
	// reports how the rollout goes. A failure is an error, never a phase.
	// On error the previous version, if any, keeps serving. One call
	// deploys the whole app: how many objects the app becomes on the
	// target is the driver's business.
	Put(ctx context.Context, want DesiredApp) (PutResult, error)
	// Delete removes one app. Deleting an absent app is not an error.
	Delete(ctx context.Context, name string) error
}

// PutResult is how a successful Target.Put ended. The zero value means the
// new version runs and is healthy (the only outcome of a synchronous
// target such as a ferry-host).
type PutResult struct {
	// Phase is PhaseReady (or empty, the same) when the new version runs
	// and is healthy, or PhaseProgressing when the target accepted it and
	// is still rolling it out. Put reports a failure with an error; Apply
	// treats PhaseDegraded or PhaseFailed with a nil error as a failure.
	Phase Phase
	// Message says, in a short phrase, what a progressing rollout waits
	// for ("2 of 3 replicas updated"); empty otherwise. Never secret.
	Message string
}

// Progressing reports whether the target accepted the version and is still
// rolling it out.
func (r PutResult) Progressing() bool { return r.Phase == PhaseProgressing }

// Phase is an app's rollout phase on a target, in the manner of kstatus and
// Flux's Ready/Reconciling/Stalled conditions. It tells a version that is
// still on its way from one that failed, which a plan needs: the first is
// waited for, the second redeployed.
type Phase string

const (
	// PhaseReady: the target runs ObservedApp.Digest and reports it
	// healthy.
	PhaseReady Phase = "ready"
	// PhaseProgressing: the target accepted ObservedApp.Digest and is
	// rolling it out; it is not yet known to be healthy. A plan waits
	// for it rather than deploying the same version again.
	PhaseProgressing Phase = "progressing"
	// PhaseDegraded: the version runs but is unhealthy (failing probes,
	// too few replicas); it may recover by itself.
	PhaseDegraded Phase = "degraded"
	// PhaseFailed: the version does not run (it could not be started,
	// the rollout gave up); only a new deploy helps.
	PhaseFailed Phase = "failed"
)

// AppObserver is implemented by targets that can observe one app without
// listing all of them. A plan's apply asks it after a failed deploy (what
// runs now, did it roll back), so that many failures cost one read each,
// not one listing of the whole target each.
type AppObserver interface {
	// ObserveApp returns what Observe would report for app name, or nil
	// when nothing runs under that name.
	ObserveApp(ctx context.Context, name string) (*ObservedApp, error)
}

// RollBacker is implemented by targets that keep the previous version of an
// app loaded and can switch back to it at once.
type RollBacker interface {
	// RollBack switches app name back to its previous version.
	RollBack(ctx context.Context, name string) error
}

// DesiredApp is what a target should run for one app: a signed app artifact
// in an OCI registry, pinned by digest, and its resolved configuration.
type DesiredApp struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Ref is the artifact reference, "repository@sha256:<hex>".
	Ref string `json:"ref"`
	// Digest is the artifact's manifest digest (the part after '@' in Ref).
	Digest string `json:"digest"`
	// App is the resolved configuration stored in the artifact.
	App deploy.App `json:"app"`
	// Secrets are values of the app's secret variables, sent to the target
	// over its authenticated channel. They are never serialised into a plan
	// file or a log.
	Secrets map[string]string `json:"-"`
	// Owner is the identity of the spec source and target that deploys
	// the app (see plan.OwnerOf), recorded by targets that implement
	// OwnerRecorder. Empty means none is sent: such a target keeps the
	// owner it already recorded.
	Owner string `json:"owner,omitempty"`
}

// ObservedApp is what a target reports about one app it runs.
type ObservedApp struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Ref is the artifact reference the app was deployed from, if known.
	Ref string `json:"ref,omitempty"`
	// Digest is the running version's artifact digest or, while Phase is
	// PhaseProgressing, the digest of the version being rolled out.
	Digest string `json:"digest"`
	// Managed is true when ferry deployed the app; only managed apps are
	// ever pruned.
	Managed bool `json:"managed"`
	// Owner is the owner the target recorded for the app (DesiredApp.Owner
	// of the PUT that deployed it), from targets that implement
	// OwnerRecorder. Empty means none is recorded: the app was deployed
	// before owners were, or by a client that sent none.
	Owner string `json:"owner,omitempty"`
	// Status is the target's own word for the app's state ("serving",
	// "failed", ...).
	Status string `json:"status,omitempty"`
	// Healthy reports the last health probe.
	Healthy bool `json:"healthy"`
	// Phase is the app's rollout phase as the target reports it. Empty
	// (from targets, or hosts, that predate phases) is read as the phase
	// that Healthy and Status imply; see EffectivePhase.
	Phase Phase `json:"phase,omitempty"`
	// Previous is the digest of the version kept for rollback, if any.
	Previous string `json:"previous,omitempty"`
	// Message explains a failed status.
	Message string `json:"message,omitempty"`
	// SecretHashes are keyed hashes of the secret values the app runs
	// with, by variable name, from targets that implement SecretHasher
	// (never the values). Nil means the target does not report them; an
	// empty map means the app runs without secrets.
	SecretHashes map[string]string `json:"secret_hashes,omitempty"`
	// RolledBack is set when the target rolled the app back by itself
	// (a ferry-host whose health probes failed within the version's bake)
	// to the version it runs now; nil otherwise.
	RolledBack *Rollback `json:"rolled_back,omitempty"`
}

// EffectivePhase returns o.Phase or, when it is empty, the phase Healthy
// and Status imply: PhaseReady when healthy, PhaseFailed when Status is
// "failed", else PhaseDegraded.
func (o ObservedApp) EffectivePhase() Phase {
	switch {
	case o.Phase != "":
		return o.Phase
	case o.Healthy:
		return PhaseReady
	case o.Status == "failed":
		return PhaseFailed
	}
	return PhaseDegraded
}

// Rollback is a rollback a target made by itself.
type Rollback struct {
	// From is the digest of the version that was rolled back.
	From string `json:"from"`
	// To is the digest of the version that runs again.
	To string `json:"to"`
	// Reason says why, in a full sentence.
	Reason string `json:"reason"`
	// At is when it happened (the target's clock).
	At time.Time `json:"at"`
}

// OwnerRecorder is implemented by targets that record each app's owner
// (DesiredApp.Owner) and report it back (ObservedApp.Owner), so that a plan
// only ever prunes or replaces apps of its own spec and target. Targets
// that do not implement it (or return false) report no owners; a plan
// against them treats every managed app as its own.
type OwnerRecorder interface {
	// RecordsOwners reports whether the target records app owners.
	RecordsOwners() bool
}

// Checker is implemented by targets that can tell, before anything is
// applied, that they would refuse a desired app (a Kubernetes target whose
// pods verify signatures, given an artifact none of its trust keys
// signed). The plan reports the error on the app; Put refuses the app with
// it too.
type Checker interface {
	// Check returns why want cannot run on the target, or nil.
	Check(ctx context.Context, want DesiredApp) error
}

// SecretHasher is implemented by targets that report ObservedApp
// SecretHashes, so that a plan can tell that a secret's value changed
// without either side showing a value: it hashes the desired values the
// same way and compares.
type SecretHasher interface {
	// SecretHashes returns the keyed hashes of secrets for app, in the
	// form the target reports them; an empty map for no secrets.
	SecretHashes(app string, secrets map[string]string) map[string]string
}

// Locker is implemented by targets that can hold an exclusive apply lock
// themselves (for example a lease kept by the target's control API), so that
// two applies to one target never interleave, even from different machines.
// It is optional: the plan package's Apply finds it by type assertion.
//
// Apply takes the lock of every target in a plan, in name order, before it
// checks the plan for staleness, and releases them when it returns. A lock
// must not outlive a holder that crashed (use a lease that expires, or a
// lock the kernel drops with the process).
type Locker interface {
	// Lock blocks until the caller holds the target's apply lock or ctx
	// ends, and returns the function that releases it. holder describes
	// the caller for messages ("ferry apply, pid 42 on build-1").
	Lock(ctx context.Context, holder string) (unlock func(), err error)
}

// LockInspector is implemented by Lockers whose locks can be read and
// released by someone other than their holder, so that an operator can
// free the lock of an apply that died (ferry force-unlock) whatever kind
// the target is.
type LockInspector interface {
	// Locks returns the apply locks held on the target now, one per place
	// that keeps one (each host of a group); empty when none is held. When
	// some places cannot be read it returns the locks it could read with
	// an error naming the others.
	Locks(ctx context.Context) ([]LockInfo, error)
	// ReleaseLock releases the lock with id wherever the target holds it.
	// Releasing a lock that is no longer held is not an error.
	ReleaseLock(ctx context.Context, id string) error
}

// LockInfo describes one held apply lock.
type LockInfo struct {
	// ID names the lock for ReleaseLock. It is not a secret (anyone who
	// may read the lock may release it) but it is all it takes.
	ID string `json:"id"`
	// Holder is the holder passed to Locker.Lock.
	Holder string `json:"holder"`
	// Where says which place holds it, in the target's terms (a host's
	// endpoint).
	Where string `json:"where"`
	// Acquired is when it was taken and Expires when it lapses unless
	// renewed (the target's clock); zero when the target does not say.
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Differ is implemented by targets that turn one app into several objects
// of their own (a Kubernetes Deployment, Service and ConfigMap) and can say
// which of them differ from what want makes of them: drift that the
// artifact digest alone does not show, such as a replica count edited by
// hand. A plan calls it for every desired app the target already runs and
// plans an update when a digest-equal app has drift.
type Differ interface {
	// Diff returns the objects of app want.Name that differ on the target
	// from what want would make them, sorted by Object; none when the app
	// matches. want.Secrets is always nil (plans never hold secret
	// values): a driver compares secret objects by the hashes it reports
	// through SecretHasher, never by value, and never reports values.
	Diff(ctx context.Context, want DesiredApp) ([]ObjectDiff, error)
}

// ObjectDiff is one object of an app that differs on the target.
type ObjectDiff struct {
	// Object names it in the target's terms ("Deployment/shop/api").
	Object string `json:"object"`
	// Change is "create" (missing on the target), "update" (differs) or
	// "delete" (on the target but no longer part of the app).
	Change string `json:"change"`
	// Fields are the paths of the fields that differ ("spec.replicas"),
	// for an update; never their values, which may be secret.
	Fields []string `json:"fields,omitempty"`
}

// RolloutPreviewer is implemented by targets that roll a version out over
// many places in stages (a fleet target: waves of edge devices), so that a
// plan can say what applying a change would start and how the rollout in
// progress stands. It only reads; the plan calls it for every app it does
// not delete, and records the answer in the change.
type RolloutPreviewer interface {
	// PreviewRollout returns what Put(want) would roll out, over the
	// places the target selects now, and the app's current rollout.
	PreviewRollout(ctx context.Context, want DesiredApp) (RolloutPreview, error)
}

// RolloutPreview is what rolling one app version out on a target would do,
// by the target's policy and its inventory at the time of the plan.
type RolloutPreview struct {
	// Digest is the version previewed (DesiredApp.Digest).
	Digest string `json:"digest"`
	// Devices is how many places the target selects now (a fleet's
	// enrolled devices that match its selector, revoked ones excluded).
	Devices int `json:"devices"`
	// Waves is how many of them each wave of the policy would update, in
	// order; len(Waves) is the number of waves.
	Waves []int `json:"waves"`
	// Rates is each wave's rate limit in starts per minute (grown by the
	// policy's rate growth); nil when starts are not limited.
	Rates []int `json:"rates,omitempty"`
	// Current is the app's rollout on the target now, in progress or the
	// last one finished; nil when there is none.
	Current *RolloutState `json:"current,omitempty"`
}

// RolloutState is how a target's rollout of one app stands.
type RolloutState struct {
	// From is the version rolled back to on abort; empty for none. To is
	// the version being rolled out.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Outcome is "running", "soaking", "completed" or "aborted".
	Outcome string `json:"outcome"`
	// Wave is the current wave, counted from 1, of Waves.
	Wave  int `json:"wave"`
	Waves int `json:"waves"`
	// Pending, Updating, Healthy, Failed and RolledBack count the devices
	// by their state in this rollout: Pending are those the target
	// selects that it has not started yet.
	Pending    int `json:"pending"`
	Updating   int `json:"updating"`
	Healthy    int `json:"healthy"`
	Failed     int `json:"failed"`
	RolledBack int `json:"rolled_back"`
	// Paused is set while a person paused the rollout.
	Paused bool `json:"paused,omitempty"`
	// Stalled is set when the current wave's health gate can no longer
	// hold (too many of its devices failed, below the abort threshold):
	// the rollout waits for a newer version or a person.
	Stalled bool `json:"stalled,omitempty"`
	// Reason says why the rollout was aborted.
	Reason string `json:"reason,omitempty"`
	// Started is when the rollout began; Finished when it completed or
	// aborted (zero while it runs).
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}
