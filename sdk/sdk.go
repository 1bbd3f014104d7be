package sdk

import (
	"errors"
	"net/http"

	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// Errors returned by host calls.
var (
	// ErrNotFound means the variable or key does not exist.
	ErrNotFound = errors.New("ferry: not found")
	// ErrDenied means the component did not declare the store or host.
	ErrDenied = errors.New("ferry: denied by the component's configuration")
	// ErrIO means the host failed; retrying may help.
	ErrIO = errors.New("ferry: host I/O error")
	// ErrTooLarge means a size limit was exceeded.
	ErrTooLarge = errors.New("ferry: too large")
	// ErrInvalid means the host rejected the call's arguments.
	ErrInvalid = errors.New("ferry: invalid argument")
	// ErrUnsupported means the call is not available here (not running
	// under ferry-host, or not in a request).
	ErrUnsupported = errors.New("ferry: not supported here")
)

// CodeError maps a host result code to one of the errors above (nil for
// codes >= 0). It is exported for sdk/kv.
func CodeError(code int32) error {
	switch {
	case code >= 0:
		return nil
	case code == abi.ErrNotFound:
		return ErrNotFound
	case code == abi.ErrDenied:
		return ErrDenied
	case code == abi.ErrIO:
		return ErrIO
	case code == abi.ErrTooLarge:
		return ErrTooLarge
	case code == abi.ErrInvalid:
		return ErrInvalid
	}
	return ErrUnsupported
}

// handler is the guest's handler; a guest has exactly one.
var handler http.Handler = http.NotFoundHandler()

// Handle makes h serve every request the host routes to this component.
// Call it from init.
func Handle(h http.Handler) { handler = h }

// HandleFunc is Handle for a function.
func HandleFunc(f func(http.ResponseWriter, *http.Request)) { handler = http.HandlerFunc(f) }

// Variable returns the value of one of the component's variables (a secret
// included). It returns ErrNotFound for an undeclared name.
func Variable(name string) (string, error) {
	v, code := hostcall.VarGet(name)
	if code < 0 {
		return "", CodeError(code)
	}
	return v, nil
}
