package core

import (
	"context"
	"errors"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// Sentinel errors of the core's own checks (besides those of host,
// registry, signer and state, which its operations wrap too). Test with
// errors.Is, or map any error of the core to an api code with Classify.
var (
	// ErrBadRequest marks input errors: an app name that is not valid, a
	// reference without a digest, a reference and digest that disagree.
	// Not retryable with the same input.
	ErrBadRequest = errors.New("bad request")
	// ErrAppMismatch means the artifact holds another app than the name
	// it was put under. Not retryable with the same artifact.
	ErrAppMismatch = errors.New("artifact holds a different app")
	// ErrPersist means the state directory could not be written; the
	// version before keeps serving. Retrying can help once the disk is
	// fixed.
	ErrPersist = errors.New("state directory write failed")
)

// errSkipped: Restore found nothing to restore under a name.
var errSkipped = errors.New("nothing recorded")

// Classify maps an error of the core's operations to the api error code
// (api.Code* constants) a client sees, and, for api.CodeUnavailable,
// whether what is unavailable is something the host depends on (the
// registry, a trust root: upstream) rather than the host itself (it is
// closing, or the caller gave up). An error it does not know is
// api.CodeInternal.
func Classify(err error) (code string, upstream bool) {
	isAny := func(errs ...error) bool {
		for _, e := range errs {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	switch {
	case isAny(ErrBadRequest, registry.ErrInvalidReference, signer.ErrInvalidReference, state.ErrInvalid):
		return api.CodeBadRequest, false
	case isAny(signer.ErrUnsigned, signer.ErrNoMatchingKey, signer.ErrPayloadMismatch, signer.ErrAnnotationMismatch,
		signer.ErrDigestMismatch, signer.ErrTagMoved, signer.ErrEmptyPolicy, signer.ErrInvalidKey, registry.ErrDigestMismatch):
		return api.CodeVerification, false
	case isAny(signer.ErrNotFound, registry.ErrNotFound):
		return api.CodeArtifactNotFound, false
	case isAny(host.ErrNotFound):
		return api.CodeNotFound, false
	case isAny(host.ErrNoPrevious):
		return api.CodeNoPrevious, false
	case isAny(ErrAppMismatch, registry.ErrInvalidArtifact, host.ErrInvalidApp, host.ErrMissingModule,
		host.ErrDigestMismatch, host.ErrMalformedModule, host.ErrImportNotOffered, host.ErrMissingExport,
		host.ErrMissingVariable, host.ErrRouteConflict, host.ErrHealthCheck, host.ErrInstantiate):
		return api.CodeRejected, false
	case isAny(signer.ErrRegistry, signer.ErrTrustRootUnavailable, registry.ErrUnavailable, registry.ErrUnauthorized):
		return api.CodeUnavailable, true
	case isAny(host.ErrClosed, context.Canceled, context.DeadlineExceeded):
		return api.CodeUnavailable, false
	}
	return api.CodeInternal, false
}
