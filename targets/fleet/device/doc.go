// Package device is ferry-host's device mode: an edge device that runs the
// host core (package core) and takes its desired state from a fleet
// server over the device protocol (package api), dialing out only, so it
// works behind NAT.
//
// # Life of a device
//
// Start opens the host core in the data directory and restores every app
// recorded there from the directory alone (core.Restore re-verifies the
// cached signatures with the device's own trust keys), so a device that
// lost power (SIGKILL) serves its last good versions again before — and
// without — any network. Then the Device loop runs beside the app
// listener:
//
//   - Enrollment, once: with no credential in the data directory it POSTs
//     the enrollment token (api.PathEnroll) and stores the device ID and
//     credential it gets in CredentialFile, mode 0600, written atomically.
//     A restart uses the stored credential and never enrolls again.
//   - Long-poll: GET desired with ?wait= and If-None-Match: "<version>";
//     the server answers 304 after the wait when nothing changed, 200 at
//     once when it did.
//   - Apply: Decide (a pure function) compares the desired state with what
//     the core runs; each app to change is put by digest through the core,
//     which verifies its signature against the device's own trust keys,
//     pulls only the blobs its cache lacks, deploys and health-probes the
//     new version before it takes traffic. A failed put leaves the version
//     before serving: the core keeps the previous version for rollback.
//   - Report: Statuses (a pure function) turns what runs, the desired state
//     and the remembered failures into api.AppStatus values; the reporter
//     PUTs a StatusReport, with DeviceInfo (version, arch such as
//     "arm/v7", OS, uptime, free memory from /proc/meminfo and free disk
//     from statfs of the data directory), whenever it changed and every
//     Heartbeat.
//
// # Failures
//
// A version the device refuses — its signature does not verify, the core
// rejects the artifact, or it fails its health probe at deploy — is
// remembered as a permanent Failure of that digest: the last good version
// keeps serving, the app is reported PhaseRolledBack with Failed set to the
// bad digest and Error saying why, and the digest is not tried again until
// the desired state names another. A version that turns unhealthy within
// its bake after deploy is rolled back by the core's prober; the device
// reports that the same way. Transient failures (registry down) are retried
// with Backoff, reported PhaseUpdating with the error.
//
// When the server is unreachable the apps keep serving; every call is
// retried with exponential backoff and jitter, bounded by Backoff.Max. A
// refused credential (revoked) is retried the same way, never re-enrolled.
//
// # Secrets
//
// The credential, the enrollment token and the apps' values are never
// logged or put in an error: Credential's String and LogValue redact it,
// values travel to the core only (which keeps them 0600), and changed
// values are found by keyed hash (core.Config.SecretHashKey). Plain HTTP to
// the server is allowed only to a loopback address (CheckServerURL); else
// https, with a CA file for a private CA (NewHTTPClient).
//
// Failures are remembered in memory only: after a restart the device tries
// a refused digest once more (and refuses it again) before it reports it.
package device
