//go:build !linux

package procsec

import "errors"

// ErrUnsupported is returned where the system has no PR_SET_DUMPABLE.
var ErrUnsupported = errors.New("procsec: not supported on this system")

// HideFromSameUser is only implemented on Linux; elsewhere it returns
// ErrUnsupported.
func HideFromSameUser() error { return ErrUnsupported }

// Dumpable is only implemented on Linux; elsewhere it returns
// ErrUnsupported.
func Dumpable() (bool, error) { return true, ErrUnsupported }
