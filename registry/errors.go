package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Sentinel errors. Errors returned by this package wrap one of them (and,
// where there is one, the underlying oras-go or network error), so test with
// errors.Is.
var (
	// ErrInvalidReference: a reference could not be parsed. Retrying cannot help.
	ErrInvalidReference = errors.New("invalid reference")
	// ErrNotFound: the registry (or the local cache) does not hold the
	// manifest, tag or blob asked for. Retrying cannot help.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials (HTTP 401 or
	// 403). Retrying with the same credentials cannot help.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: the registry could not be reached or answered with a
	// server error, a timeout or "too many requests". Retrying may help.
	ErrUnavailable = errors.New("registry unavailable")
	// ErrDigestMismatch: content did not match the digest (or size) that
	// names it — it was changed in transit, in the registry or in the cache.
	// The error names the blob (see BlobError).
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrInvalidArtifact: a manifest or config does not follow the layout
	// in LAYOUT.md (wrong media type, malformed JSON, a component without
	// its layer, ...).
	ErrInvalidArtifact = errors.New("invalid artifact")
	// ErrInvalidApp: the app or modules given to Pack or PushApp cannot be
	// stored: a missing module, a duplicate or unsafe component name, a
	// digest that does not match the module.
	ErrInvalidApp = errors.New("invalid app")
	// ErrSecretValue: the app carries a value for a secret variable. Secret
	// values never go into an artifact.
	ErrSecretValue = errors.New("secret value in app config")
	// ErrCache: the local OCI-layout cache could not be opened, read or
	// written.
	ErrCache = errors.New("local cache")
	// ErrFilesTooLarge: a component's files layer is larger than the limit
	// (PackOptions.MaxFilesBytes when packing, Options.MaxFilesBytes when
	// pulling; DefaultMaxFilesBytes by default). It comes wrapped together
	// with ErrInvalidApp or ErrInvalidArtifact. Retrying cannot help.
	ErrFilesTooLarge = errors.New("files too large")
	// ErrCredentialHost: a registry login from the environment does not
	// say which registry host it is for (EnvCredentials). Retrying does not
	// help; set FERRY_REGISTRY_HOST.
	ErrCredentialHost = errors.New("registry login without a registry host")
)

// BlobError reports a failure concerning one blob or manifest, naming it.
type BlobError struct {
	// Role says what the blob is: "manifest", "config", `layer "api"`, ...
	Role string
	// Digest is the digest the content was asked for by.
	Digest digest.Digest
	// Err wraps one of the sentinel errors.
	Err error
}

// Error implements error.
func (e *BlobError) Error() string {
	return fmt.Sprintf("registry: %s %s: %v", e.Role, e.Digest, e.Err)
}

// Unwrap returns the underlying error.
func (e *BlobError) Unwrap() error { return e.Err }

// Retryable reports whether err is a failure that retrying later may cure:
// the registry could not be reached, timed out or answered with a server
// error.
func Retryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// classify wraps err with the sentinel that describes it, keeping err in the
// chain. Errors that already carry one of our sentinels are returned as is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrInvalidReference, ErrNotFound, ErrUnauthorized, ErrUnavailable,
		ErrDigestMismatch, ErrInvalidArtifact, ErrInvalidApp, ErrSecretValue, ErrCache, ErrFilesTooLarge} {
		if errors.Is(err, s) {
			return err
		}
	}
	if s := sentinelFor(err); s != nil {
		return fmt.Errorf("%w: %w", s, err)
	}
	return err
}

func sentinelFor(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, content.ErrMismatchedDigest), errors.Is(err, content.ErrTrailingData),
		errors.Is(err, io.ErrUnexpectedEOF) && strings.Contains(err.Error(), "expected content size"):
		return ErrDigestMismatch
	case errors.Is(err, errdef.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return ErrUnauthorized
	case errors.Is(err, errdef.ErrInvalidReference), errors.Is(err, errdef.ErrMissingReference):
		return ErrInvalidReference
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch code := resp.StatusCode; {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			return ErrUnauthorized
		case code == http.StatusNotFound:
			return ErrNotFound
		case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
			return ErrUnavailable
		}
		return nil
	}
	// oras-go reports a body whose length or Docker-Content-Digest header
	// disagrees with the descriptor as a plain error; both mean the content
	// is not what the digest names.
	if msg := err.Error(); strings.Contains(msg, "mismatch Content-Length") ||
		strings.Contains(msg, "digest mismatch in Docker-Content-Digest") {
		return ErrDigestMismatch
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.As(err, &netErr):
		return ErrUnavailable
	}
	return nil
}
