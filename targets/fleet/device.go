package fleet

import "time"

// Health is a device's own verdict on the version it runs.
type Health string

// Health values. The empty string means HealthUnknown.
const (
	// HealthUnknown: the device has not (yet) judged the version it runs.
	HealthUnknown Health = "unknown"
	// HealthHealthy: the device runs its version and its health probe passes.
	HealthHealthy Health = "healthy"
	// HealthUnhealthy: the version failed to verify, start or pass its
	// health probe on the device.
	HealthUnhealthy Health = "unhealthy"
)

// Device is what the agent last heard from one edge device about one app.
// It is an observation, not a command: Step reads it and never changes it.
type Device struct {
	// ID names the device uniquely in the fleet; it must not be empty. Its
	// SHA-256 decides the device's place in percentage waves (see Assign).
	ID string `json:"id"`
	// Labels are matched by the target's and the waves' selectors.
	Labels map[string]string `json:"labels,omitempty"`
	// Digest is the app digest the device runs now; empty when it runs none.
	Digest string `json:"digest,omitempty"`
	// Previous is the digest the device ran before Digest, kept on the
	// device for an instant rollback. Informational: the engine rolls back
	// to the rollout's from-digest.
	Previous string `json:"previous,omitempty"`
	// Health is the device's verdict on Digest; empty means HealthUnknown.
	Health Health `json:"health,omitempty"`
	// LastReport is when the agent received the device's last report (the
	// agent's clock, not the device's); zero means never. A report only
	// counts for a device being updated if it is not older than the moment
	// the update started, so an offline device's old report never passes
	// or fails it.
	LastReport time.Time `json:"last_report,omitzero"`
}
