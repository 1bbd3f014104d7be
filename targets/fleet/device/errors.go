package device

import "errors"

// Sentinel errors of the device. Test with errors.Is.
var (
	// ErrInsecureURL means the server URL is plain HTTP to a host that is
	// not loopback: the credential would cross the network in clear. Not
	// retryable; use https (with a CA file when the server's certificate
	// is not publicly trusted).
	ErrInsecureURL = errors.New("device: plain HTTP is allowed only to a loopback server")
	// ErrBadToken means the server refused the enrollment token (unknown,
	// expired, used up or revoked). Not retryable with the same token.
	ErrBadToken = errors.New("device: enrollment token refused")
	// ErrUnauthorized means the server does not know the device's
	// credential (wrong or revoked). The device keeps serving what it runs
	// and retries with backoff, in case the server comes back with its
	// store; only re-enrolling (a new data directory) gives a new one.
	ErrUnauthorized = errors.New("device: credential refused")
	// ErrForbidden means the credential is valid but not for this device's
	// paths: the stored device ID and credential disagree.
	ErrForbidden = errors.New("device: forbidden")
	// ErrUnavailable means the server could not be reached or answered
	// 5xx. Retrying later can help.
	ErrUnavailable = errors.New("device: server unavailable")
	// ErrProtocol means the server answered something the protocol does
	// not allow (an unexpected status, a body that does not parse).
	ErrProtocol = errors.New("device: protocol error")
	// ErrCredentialFile means the stored credential could not be read or
	// written, or holds nonsense.
	ErrCredentialFile = errors.New("device: credential file")
)
