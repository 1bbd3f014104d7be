package host

import "errors"

// Sentinel errors returned by the Runtime. Errors are wrapped with %w and carry
// the app, component, import or variable they concern; test with errors.Is.
var (
	// ErrClosed means the Runtime was closed. Not retryable.
	ErrClosed = errors.New("host: runtime closed")
	// ErrNotFound means no app of that name is deployed.
	ErrNotFound = errors.New("host: app not found")
	// ErrNoPrevious means the app has no previous version to roll back to.
	ErrNoPrevious = errors.New("host: no previous version")
	// ErrInvalidApp means the app's configuration cannot be served (bad name,
	// unknown executor, bad route, undeclared store, ...). Not retryable
	// without changing the app.
	ErrInvalidApp = errors.New("host: invalid app")
	// ErrMissingModule means no Wasm bytes were given for a component's digest.
	ErrMissingModule = errors.New("host: module bytes missing")
	// ErrDigestMismatch means the Wasm bytes do not hash to the component's
	// digest.
	ErrDigestMismatch = errors.New("host: module digest mismatch")
	// ErrMalformedModule means wazero could not decode or validate the module.
	ErrMalformedModule = errors.New("host: malformed module")
	// ErrImportNotOffered means the module imports something the host does
	// not offer; the message names the import.
	ErrImportNotOffered = errors.New("host: import not offered")
	// ErrMissingExport means the module lacks an export its executor needs;
	// the message names it.
	ErrMissingExport = errors.New("host: required export missing")
	// ErrMissingVariable means a component's variable template refers to an
	// app variable that has no value (neither a default nor a given secret).
	ErrMissingVariable = errors.New("host: variable has no value")
	// ErrRouteConflict means two apps serving the same host name declare the
	// same route, or one app declares it twice.
	ErrRouteConflict = errors.New("host: route conflict")
	// ErrHealthCheck means a new version failed its health probe; the old
	// version keeps serving.
	ErrHealthCheck = errors.New("host: health check failed")
	// ErrInstantiate means the module could not be instantiated or
	// initialised at deploy (for example _initialize trapped).
	ErrInstantiate = errors.New("host: instantiation failed")
)
