package api

import (
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// PutRequest is the body of PUT /v1/apps/{name}.
type PutRequest struct {
	// Ref is the artifact, "REPO@sha256:<hex>" (or "REPO" with Digest).
	Ref string `json:"ref"`
	// Digest is the app manifest digest. It may be empty when Ref carries
	// one; when both are given they must agree.
	Digest string `json:"digest,omitempty"`
	// Secrets are values of the app's variables (secret ones, or overrides
	// of defaults). The host keeps them in a 0600 file and never logs them.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Owner identifies the spec source and target that deploys the app
	// (plan.OwnerOf: "git:host/org/repo//path#target"); at most
	// state.MaxOwnerLen printable ASCII bytes. The host records it with
	// the app, keeps it across rollbacks and restarts, and shows it in
	// AppInfo.Owner; it does not judge it (plans decide whose app is
	// whose). Empty keeps the owner already recorded (none for a new app).
	Owner string `json:"owner,omitempty"`
}

// String describes the request without its secrets.
func (p PutRequest) String() string { return "PutRequest{" + p.Ref + " " + p.Digest + "}" }

// Status words of AppInfo.Status.
const (
	// StatusServing: the app takes traffic.
	StatusServing = "serving"
	// HealthUnhealthy is AppInfo.Health of a serving app whose probes
	// after deploy failed FailureThreshold times in a row.
	HealthUnhealthy = "unhealthy"
	// StatusFailed: the app is recorded on the host but could not be
	// brought back after a restart (AppInfo.Message says why).
	StatusFailed = "failed"
)

// AppInfo describes one app on the host, as GET /v1/apps returns it.
type AppInfo struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Ref is the artifact the serving version came from.
	Ref string `json:"ref,omitempty"`
	// Digest is the serving version's artifact digest.
	Digest string `json:"digest,omitempty"`
	// Status is StatusServing or StatusFailed.
	Status string `json:"status"`
	// Health is the runtime's deploy-time probe result ("healthy", or
	// "unchecked" when no component declares a health path; empty when
	// failed).
	Health string `json:"health,omitempty"`
	// Healthy is true when the app serves, its deploy probe (if any)
	// passed and its probes since (Probes) did not make it unhealthy.
	Healthy bool `json:"healthy"`
	// Probes are the health prober's state of each component with a
	// health path (healthy, last probe, consecutive failures, last error).
	Probes []ComponentHealth `json:"probes,omitempty"`
	// RolledBack is set when the host rolled the app back by itself to
	// the version that serves: from which digest, and why. A PUT clears it.
	RolledBack *HostRollback `json:"rolled_back,omitempty"`
	// Managed is always true: every app on a ferry-host was put there
	// through this API.
	Managed bool `json:"managed"`
	// Owner is the owner recorded for the app (PutRequest.Owner); empty
	// when none was ever sent (apps deployed before owners were recorded).
	Owner string `json:"owner,omitempty"`
	// Previous and PreviousRef name the version kept for rollback.
	Previous    string `json:"previous,omitempty"`
	PreviousRef string `json:"previous_ref,omitempty"`
	// Message explains a failed status.
	Message string `json:"message,omitempty"`
	// VerifiedBy names the trust key that verified the serving version
	// (empty when the host runs with verification off).
	VerifiedBy string `json:"verified_by,omitempty"`
	// DeployedAt is when the serving version was first deployed.
	DeployedAt time.Time `json:"deployed_at,omitzero"`
	// Generation is the runtime's version counter (changes on restart).
	Generation uint64 `json:"generation,omitempty"`
	// Components lists the serving version's components.
	Components []ComponentStatus `json:"components,omitempty"`
	// SecretHashes are keyed hashes of the serving version's secret
	// values by variable name, never the values: HMAC-SHA256 keyed with a
	// key derived from the host's bearer token, over the app name, the
	// variable name and the value ("hmac-sha256:<hex>"). A client with the
	// token computes the same (SecretHashes) to tell a changed
	// secret. Empty (not omitted) for a serving app without secrets;
	// omitted for a failed one.
	SecretHashes map[string]string `json:"secret_hashes"`
}

// ComponentStatus is one component of the serving version, as the
// runtime reports it.
type ComponentStatus struct {
	// Name is the component's name.
	Name string `json:"name"`
	// Digest is the digest of its module.
	Digest string `json:"digest"`
	// Executor is how it runs.
	Executor deploy.Executor `json:"executor"`
}

// ListResponse is the body of GET /v1/apps.
type ListResponse struct {
	Apps []AppInfo `json:"apps"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	// Error is a full-sentence explanation.
	Error string `json:"error"`
	// Code classifies it (Code* constants).
	Code string `json:"code"`
	// Lock is the lease that holds the apply lock, on a 409 with Code
	// CodeLocked (POST /v1/lock while another holder has it).
	Lock *Lease `json:"lock,omitempty"`
}

// LockRequest is the body of POST /v1/lock (take the host's apply lock) and
// of PUT /v1/lock/{id} (renew it).
type LockRequest struct {
	// Holder describes who takes the lock ("ferry apply, pid 42 on
	// build-1"); shown to whoever waits. Required on POST, at most 256
	// printable bytes; ignored on PUT.
	Holder string `json:"holder,omitempty"`
	// TTL is how long the lease lasts without a renewal, as a Go duration
	// ("30s"), between MinLockTTL and MaxLockTTL. Empty means
	// DefaultLockTTL on POST, and the lease's own TTL on PUT.
	TTL string `json:"ttl,omitempty"`
}

// Lease is the host's apply lock as granted to one holder: the answer to
// POST and PUT /v1/lock, and what GET /v1/lock and a 409 show.
type Lease struct {
	// ID names the lease in PUT and DELETE /v1/lock/{id}: 128 random bits
	// in hex. Anyone with the host's token can read it from GET /v1/lock
	// (DELETE with it is a force-unlock).
	ID string `json:"id"`
	// Holder is LockRequest.Holder.
	Holder string `json:"holder"`
	// Acquired is when the lease was granted (host clock).
	Acquired time.Time `json:"acquired"`
	// Expires is when it lapses unless renewed (host clock).
	Expires time.Time `json:"expires"`
	// TTL is the lease's duration, as a Go duration.
	TTL string `json:"ttl"`
}

// LockStatus is the body of GET /v1/lock.
type LockStatus struct {
	// Held is true while a lease is live.
	Held bool `json:"held"`
	// Lease is the live lease; nil when not held.
	Lease *Lease `json:"lease,omitempty"`
}
