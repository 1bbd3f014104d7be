// Package control is ferry-host's control API: the HTTP handler that lets
// the ferry agent (and people) list, deploy, roll back and delete apps on a
// host, and the Go client that speaks it and implements targets.Target and
// targets.RollBacker for host targets.
//
// The API is JSON over HTTP under the versioned prefix /v1/:
//
//	GET    /v1/apps                  list (AppInfo per app)
//	GET    /v1/apps/{name}           one app
//	PUT    /v1/apps/{name}           deploy: body PutRequest {ref, digest, secrets}
//	DELETE /v1/apps/{name}           remove (absent is fine)
//	POST   /v1/apps/{name}/rollback  switch back to the previous version
//	GET    /healthz                  liveness, no token needed
//	GET    /metrics                  Prometheus, token needed
//
// Every request except /healthz carries "Authorization: Bearer TOKEN"; the
// token is compared in constant time and never logged.
//
// A PUT is the host's supply-chain check: the host itself verifies the
// artifact's cosign signature against its own trust policy (signer.Verify),
// pulls the artifact by digest (registry.Client.PullApp), and hands it to
// the runtime (host.Runtime.Deploy), which health-probes the new version
// before it takes traffic. A component's declared files travel in the
// artifact as a files layer (a tar, see registry/LAYOUT.md); the host
// unpacks it into a read-only in-memory tree (registry.ReadFiles) that the
// runtime preopens for the guest, and refuses an archive holding links,
// absolute paths or ".." (422). What was deployed — modules and files
// archives included, content-addressed — is kept in the host's state
// directory (package state) so Server.Restore can bring every app back
// after a restart without the registry, re-verifying the cached signatures
// locally (signer.VerifyLocal). A failed PUT leaves the previous version
// serving; the answer says why, with a status the client maps to the
// targets sentinels: 403 (targets.ErrVerification), 422
// (targets.ErrUnhealthy), 502 (targets.ErrUnavailable). Errors carry a
// machine-readable code besides the message (see ErrorBody).
//
// PUTs of one app are serialised; different apps deploy in parallel.
package control
