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
	// Put deploys or updates one app to exactly want and returns once the
	// target reports the new version healthy, or an error. On error the
	// previous version, if any, keeps serving.
	Put(ctx context.Context, want DesiredApp) error
	// Delete removes one app. Deleting an absent app is not an error.
	Delete(ctx context.Context, name string) error
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
	// Digest is the running version's artifact digest.
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

// SecretHasher is implemented by targets that report ObservedApp
// SecretHashes, so that a plan can tell that a secret's value changed
// without either side showing a value: it hashes the desired values the
// same way and compares.
type SecretHasher interface {
	// SecretHashes returns the keyed hashes of secrets for app, in the
	// form the target reports them; an empty map for no secrets.
	SecretHashes(app string, secrets map[string]string) map[string]string
}
