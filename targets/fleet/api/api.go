package api

import "time"

// Paths of the device API.
const (
	// PathEnroll is POST-ed once by a new device.
	PathEnroll = "/v1/enroll"
	// PathDesiredFmt and PathStatusFmt take the device ID.
	PathDesiredFmt = "/v1/devices/%s/desired"
	PathStatusFmt  = "/v1/devices/%s/status"
)

// Long-poll bounds: the wait a device asks for is clamped to MaxWait.
const (
	DefaultWait = 30 * time.Second
	MaxWait     = 5 * time.Minute
)

// EnrollRequest is the body of POST /v1/enroll.
type EnrollRequest struct {
	// Token is the enrollment token printed by `ferry fleet token create`.
	Token string `json:"token"`
	// Name is the device's own idea of its name (its hostname); the server
	// may use it in the device ID it assigns. Optional.
	Name string `json:"name,omitempty"`
	// Labels are the device's labels (k=v, Kubernetes label syntax). The
	// token's own labels are added to them and win on a conflict.
	Labels map[string]string `json:"labels,omitempty"`
	// Info describes the device at enrollment.
	Info DeviceInfo `json:"info"`
}

// EnrollResponse is the answer to a successful enrollment.
type EnrollResponse struct {
	// DeviceID names the device in every later path.
	DeviceID string `json:"device_id"`
	// Credential is the device's own bearer credential. It is shown once;
	// the server keeps only a hash of it. The device stores it in its data
	// directory with mode 0600.
	Credential string `json:"credential"`
	// Labels are the labels the server recorded (request and token merged).
	Labels map[string]string `json:"labels,omitempty"`
}

// Desired is the state a device should run: GET /v1/devices/{id}/desired.
type Desired struct {
	// Version identifies this desired state; it is also the ETag.
	Version string `json:"version"`
	// Apps are every app the device should run, by name. An app the
	// device runs that is not here is to be removed.
	Apps []DesiredApp `json:"apps"`
}

// DesiredApp is one app of Desired.
type DesiredApp struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Ref is the artifact, "REPO@sha256:<hex>". The device pulls it from
	// the registry by digest and verifies its signature against its own
	// trust keys before it serves it.
	Ref string `json:"ref"`
	// Digest is the artifact's manifest digest (the one in Ref).
	Digest string `json:"digest"`
	// Values are the app's variable values (secret ones and overrides),
	// delivered to this device only, over its own channel. A device keeps
	// them 0600 and never logs them.
	Values map[string]string `json:"values,omitempty"`
	// Owner is the spec source and target that deploys the app.
	Owner string `json:"owner,omitempty"`
}

// Phases of AppStatus.Phase.
const (
	PhaseServing    = "serving"     // runs Digest and its health probe passes (or it has none)
	PhaseUpdating   = "updating"    // pulling, verifying or probing a new version
	PhaseUnhealthy  = "unhealthy"   // runs Digest, which fails its health probe
	PhaseRolledBack = "rolled_back" // a new version failed on the device; it went back to Digest
	PhaseFailed     = "failed"      // could not run any version (RollbackFrom/Error say why)
)

// StatusReport is the body of PUT /v1/devices/{id}/status.
type StatusReport struct {
	// DesiredVersion is the Desired.Version this report answers to.
	DesiredVersion string `json:"desired_version,omitempty"`
	// Apps is one entry per app the device has.
	Apps []AppStatus `json:"apps"`
	// Info describes the device now.
	Info DeviceInfo `json:"info"`
}

// AppStatus is one app's state on a device.
type AppStatus struct {
	Name string `json:"name"`
	// Digest is the version the device serves now (empty: none).
	Digest string `json:"digest,omitempty"`
	// Previous is the version kept on the device for a rollback.
	Previous string `json:"previous,omitempty"`
	// Phase is one of the Phase* constants.
	Phase string `json:"phase"`
	// Healthy is the device's verdict on Digest.
	Healthy bool `json:"healthy"`
	// Failed names a digest the device was told to run and refused or
	// rolled back from (bad signature, failed start, failed health probe),
	// with Error saying why. The server counts it as a failure of that
	// digest.
	Failed string `json:"failed,omitempty"`
	// Error is the last error, a full sentence; never a secret value.
	Error string `json:"error,omitempty"`
}

// DeviceInfo describes a device.
type DeviceInfo struct {
	Version       string  `json:"version"` // ferry-host version
	Arch          string  `json:"arch"`    // GOARCH, with GOARM for arm ("arm/v7")
	OS            string  `json:"os"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	FreeMemory    uint64  `json:"free_memory_bytes"`
	FreeDisk      uint64  `json:"free_disk_bytes"`
}

// Error codes of ErrorBody.Code.
const (
	CodeUnauthorized = "unauthorized" // 401: no or unknown credential
	CodeForbidden    = "forbidden"    // 403: another device's path
	CodeBadToken     = "bad_token"    // 401: enrollment token unknown, expired, used up or revoked
	CodeBadRequest   = "bad_request"  // 400
	CodeNotFound     = "not_found"    // 404
	CodeInternal     = "internal"     // 500
)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}
