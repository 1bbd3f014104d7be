// Package core is the ferry-host core: what a host does with an app,
// whichever entry point asked. The control API server (package control,
// behind `ferry-host` and `ferry up`) calls it, and so will the device
// mode; it knows nothing of HTTP, tokens or the apply lock.
//
// Core.Put is the host's supply-chain check: the host itself verifies the
// artifact's cosign signature against its own trust policy (signer.Verify),
// pulls the artifact by digest (registry.Client.PullApp), and hands it to
// the runtime (host.Runtime.Deploy), which health-probes the new version
// before it takes traffic. A component's declared files travel in the
// artifact as a files layer (a tar, see registry/LAYOUT.md); the core
// unpacks it into a read-only in-memory tree (registry.ReadFiles) that the
// runtime preopens for the guest, and refuses an archive holding links,
// absolute paths or ".." (registry.ErrInvalidArtifact). What was deployed
// — modules and files archives included, content-addressed — is kept in
// the host's state directory (package state) so Core.Restore can bring
// every app back after a restart without the registry, re-verifying the
// cached signatures locally (signer.VerifyLocal). A failed Put leaves the
// previous version serving. A Put of the digest that serves already (new
// secrets, a new owner) reconfigures it in place and keeps the version
// kept for rollback. Puts of one app are serialised; different apps
// deploy in parallel.
//
// Core.RunHealth probes every serving component that declares a health
// path on its interval; a version that turns unhealthy within its bake
// after its deploy is rolled back by the host itself to its previous
// version (DecideHealth is that decision, a pure function), and the
// rollback is recorded so Get reports it (AppInfo.RolledBack) after a
// restart too.
//
// Errors wrap the sentinels of host, registry, signer and state, and the
// core's own (ErrBadRequest, ErrAppMismatch, ErrPersist); Classify maps
// any of them to the api error code a client sees. Results are the wire
// types of package api, so an entry point can hand them on as they are.
//
// Open is the one construction every entry point shares: the runtime, the
// state directory, the registry client with the environment's registry
// login (registry.EnvCredentials) bridged to the signature verifier, and
// a metrics registry with the Go, process, runtime and core collectors.
package core
