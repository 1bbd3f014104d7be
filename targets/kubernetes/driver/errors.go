package driver

import (
	"errors"
	"fmt"
	"strings"
)

// ErrConflict is wrapped by a *ConflictError: another field manager owns a
// field ferry would set. Retrying does not help; set Options.ForceConflicts
// (or remove the other manager's object) to take the fields over.
var ErrConflict = errors.New("kubernetes: field owned by another manager")

// ConflictError is an apply that another field manager's ownership of some
// fields refused.
type ConflictError struct {
	// Object is "Kind/namespace/name".
	Object string
	// Conflicts are the fields and the managers that own them.
	Conflicts []Conflict
}

// Conflict is one field another manager owns.
type Conflict struct {
	// Manager is the other field manager ("kubectl-client-side-apply").
	Manager string
	// Field is the field's path (".spec.replicas").
	Field string
}

func (e *ConflictError) Error() string {
	var parts []string
	for _, c := range e.Conflicts {
		parts = append(parts, fmt.Sprintf("%s is managed by %q", c.Field, c.Manager))
	}
	if len(parts) == 0 {
		parts = append(parts, "a field is managed by another manager")
	}
	return fmt.Sprintf("%s exists and was not made by ferry: %s; remove it, or let ferry take the fields over (force conflicts)", e.Object, strings.Join(parts, ", "))
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// ErrUntrusted is wrapped by an *UntrustedError: the artifact is not signed
// by any of the trust keys the target's pods verify with. Retrying does not
// help; sign it with a trusted key or trust its key in the target.
var ErrUntrusted = errors.New("not signed by a trusted key")

// UntrustedError is an app whose artifact the pods would refuse.
type UntrustedError struct {
	// App and Ref name the app and its artifact.
	App, Ref string
	// Keys are the trust keys' file names.
	Keys []string
	// Err is the verifier's reason.
	Err error
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("signature: %s is not signed by a trusted key [%s]: %v; its pods verify it themselves and would never become ready",
		e.Ref, strings.Join(e.Keys, ", "), strings.TrimPrefix(e.Err.Error(), e.Ref+": "))
}

// Unwrap returns the verifier's error (which wraps ErrUntrusted).
func (e *UntrustedError) Unwrap() error { return e.Err }
