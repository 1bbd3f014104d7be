package api

import "time"

// HealthState is what the host's health prober knows about one component
// of the serving version between probes. The zero value is a version whose
// probes made it unhealthy before any passed; a version just deployed
// starts healthy (its deploy probe passed: Healthy true, nothing else set).
type HealthState struct {
	// Healthy is false once FailureThreshold probes in a row failed, and
	// true again after one passes.
	Healthy bool `json:"healthy"`
	// LastProbe is when the last probe after deploy ran; zero before the
	// first one.
	LastProbe time.Time `json:"last_probe,omitzero"`
	// LastError says why the last probe failed; empty when it passed.
	LastError string `json:"last_error,omitempty"`
	// ConsecutiveFailures counts the failed probes since the last passing
	// one.
	ConsecutiveFailures int `json:"consecutive_failures"`
}

// HostRollback reports that the host rolled an app back by itself.
type HostRollback struct {
	// From is the digest of the version that turned unhealthy.
	From string `json:"from"`
	// FromRef is its artifact reference.
	FromRef string `json:"from_ref,omitempty"`
	// To is the digest of the version that serves again.
	To string `json:"to"`
	// Reason says why, in a full sentence.
	Reason string `json:"reason"`
	// At is when it happened (host clock).
	At time.Time `json:"at"`
}

// ComponentHealth is the prober's state of one component of the serving
// version, as GET /v1/apps shows it.
type ComponentHealth struct {
	// Component is the component's name.
	Component string `json:"component"`
	// Path is its health path.
	Path string `json:"path"`
	HealthState
}
