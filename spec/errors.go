package spec

import "errors"

// Sentinel errors of the small parsers (ParseSize, ParseLabelSelector,
// ParseRoute, ParseTemplate). Errors returned by them wrap one of these, so
// callers can test with errors.Is. Load reports them as diagnostics.
var (
	// ErrInvalidSize means a size is not a whole number of bytes with an
	// optional unit.
	ErrInvalidSize = errors.New("invalid size")
	// ErrInvalidSelector means a label selector does not follow the
	// Kubernetes label selector syntax.
	ErrInvalidSelector = errors.New("invalid label selector")
	// ErrInvalidRoute means a route is not "/", an exact path, a path with
	// ":param" segments, or a prefix ending in "/...".
	ErrInvalidRoute = errors.New("invalid route")
	// ErrInvalidTemplate means a variable template is malformed.
	ErrInvalidTemplate = errors.New("invalid template")
)
