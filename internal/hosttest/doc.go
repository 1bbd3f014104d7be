// Package hosttest starts a real, in-process ferry-host for tests (Start:
// the wazero runtime, its state store, a registry client and the control
// API on loopback) and makes the cosign keys and control token the tests of
// sync/plan, sync/release and sync/agent share (SecretKeys, SecretToken).
//
// It is for tests only.
package hosttest
