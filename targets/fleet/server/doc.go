// Package server is the agent side of the fleet device API: an http.Handler
// that edge devices enroll with, long-poll their desired state from and
// report their status to (the paths and wire types of targets/fleet/api),
// and the device inventory behind it.
//
// # Auth
//
// A device enrolls once with an enrollment token (CreateToken: a time to
// live, a maximum number of uses, labels given to every device that
// enrolls with it; RevokeToken). It gets its own random credential, which
// it sends as "Authorization: Bearer <credential>" on every later call. A
// credential reads only its own device's desired state and writes only its
// own status: another device's path answers 403, an unknown or revoked
// credential 401 (RevokeDevice takes effect on the next request and ends
// the device's pending long-poll at once). Tokens and credentials are
// random 256-bit values, shown once, stored only as SHA-256 hashes, never
// logged.
//
// # Desired state
//
// The desired state of a device is the union of the apps its controllers
// set for it (SetDesiredApp, one slot per controller and app). Its version
// is a hash of its content, so an unchanged desired state keeps its version
// across a restart, and it is the ETag. GET desired with If-None-Match of
// the current version and ?wait=D (clamped to api.MaxWait) blocks until the
// desired state changes (200 at once) or D passes (304); without wait it
// answers at once. Waiting costs a goroutine parked on the device's
// notification channel, no polling.
//
// The desired state is held in memory, not in the store: controllers set it
// again when they start, from their own persisted rollout. Create them
// before serving the handler.
//
// # Store
//
// The inventory (each device's ID, labels, enrollment, credential hash,
// revocation, last status and last-seen time) and the enrollment tokens live
// in a directory: devices/<id>.json and tokens.json, each written
// atomically (a temporary file, fsync, rename, fsync of the directory), so
// that an agent killed at any moment restarts with all of it. Enrollments,
// revocations and status reports are durable before they are answered.
//
// # Concurrency
//
// A Server is safe for concurrent use. Its zero value is not usable; call
// Open.
package server
