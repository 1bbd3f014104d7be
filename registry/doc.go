// Package registry stores ferry apps in OCI registries and runs one.
//
// An app travels as OCI artifacts laid out as described in LAYOUT.md: every
// component is a CNCF Wasm artifact (config
// "application/vnd.wasm.config.v0+json", one "application/wasm" layer), and
// the app is an OCI image manifest (artifactType
// "application/vnd.ferry.app.v1+json") whose config blob is the resolved,
// secret-free [deploy.App] and whose layers are the same Wasm blobs, plus
// one files layer (a canonical tar, [PackFiles]) per component that
// declares files; [ReadFiles] unpacks one into a read-only in-memory
// [FileTree], refusing links, absolute paths and "..". [Pack]
// builds these documents deterministically without any network; a [Client]
// pushes, pulls (by digest, into a local OCI-layout cache, verifying every
// blob), resolves, copies and inspects them with oras-go.
//
// [Serve] and [NewServer] run CNCF Distribution in-process with filesystem
// storage: the embedded registry behind "ferry registry serve" and "ferry up".
//
// Errors returned by this package wrap the sentinel errors in errors.go
// ([ErrNotFound], [ErrUnauthorized], [ErrUnavailable], [ErrDigestMismatch],
// ...), so callers can tell "missing" from "retry may help" with errors.Is.
package registry
