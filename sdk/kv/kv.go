// Package kv reads and writes the key-value stores a ferry component
// declares (key_value_stores in its spec). Stores are persistent on the
// host and private to the app. Outside wasip1 every call returns
// sdk.ErrUnsupported.
package kv

import (
	"github.com/ferry-wasm/ferry/sdk"
	"github.com/ferry-wasm/ferry/sdk/internal/hostcall"
)

// Store is a named key-value store. The zero value is not usable; use Open.
type Store struct{ name string }

// Open returns the store called name ("default" is the usual one). Calls on
// a store the component did not declare fail with sdk.ErrDenied.
func Open(name string) *Store { return &Store{name: name} }

// Get returns the value of key, or sdk.ErrNotFound.
func (s *Store) Get(key string) ([]byte, error) {
	v, code := hostcall.KVGet(s.name, key)
	if code < 0 {
		return nil, sdk.CodeError(code)
	}
	return v, nil
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	return sdk.CodeError(hostcall.KVSet(s.name, key, value))
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(key string) error {
	return sdk.CodeError(hostcall.KVDelete(s.name, key))
}
