// Package control is ferry-host's control API: the HTTP handler that lets
// the ferry agent (and people) list, deploy, roll back and delete apps on a
// host. Its wire types are in package api; the Go client that speaks it
// and implements targets.Target for host targets is package driver.
//
// The API is JSON over HTTP under the versioned prefix /v1/:
//
//	GET    /v1/apps                  list (api.AppInfo per app)
//	GET    /v1/apps/{name}           one app
//	PUT    /v1/apps/{name}           deploy: body api.PutRequest {ref, digest, secrets, owner}
//	DELETE /v1/apps/{name}           remove (absent is fine)
//	POST   /v1/apps/{name}/rollback  switch back to the previous version
//	GET    /v1/lock                  the apply lock (api.LockStatus)
//	POST   /v1/lock                  take it: body api.LockRequest {holder, ttl}
//	PUT    /v1/lock/{id}             renew lease id
//	DELETE /v1/lock/{id}             release lease id (gone is fine)
//	GET    /healthz                  liveness, no token needed
//	GET    /metrics                  Prometheus, token needed
//
// Every request except /healthz carries "Authorization: Bearer TOKEN"; the
// token is compared in constant time and never logged.
//
// A PUT is the host's supply-chain check, done by the host core (package
// core, which Server embeds: Put, Get, List, Delete, RollBack, Restore and
// RunHealth are its methods): the host itself verifies the artifact's
// cosign signature against its own trust policy, pulls it by digest,
// stores it in its state directory and hands it to the runtime, which
// health-probes the new version before it takes traffic. A failed PUT
// leaves the previous version serving; the answer says why, with the code
// core.Classify gives and the status that code maps to, which the client
// (package driver) maps to the targets sentinels: 400 bad_request, 403
// verification_failed (targets.ErrVerification), 404 not_found or
// artifact_not_found, 409 no_previous, 422 rejected (targets.ErrUnhealthy;
// a files archive holding links, absolute paths or ".." too), 502
// unavailable when the registry or a trust root is, 503 unavailable when
// the host is closing (targets.ErrUnavailable). Errors carry the
// machine-readable code besides the message (see api.ErrorBody).
//
// PUTs of one app are serialised; different apps deploy in parallel.
//
// NewHost is the construction `ferry-host` and `ferry up` share: the core
// from core.Open (runtime, state directory, registry client and signature
// verification with the environment's registry login, metrics), its secret
// hashes keyed with the bearer token, and the Server over it serving the
// core's metrics registry at GET /metrics.
//
// # The apply lock
//
// The host keeps one apply lock, so that two `ferry apply` runs against it
// from different machines never interleave (a local flock only covers one
// machine). It is a lease: POST /v1/lock {"holder": "ferry apply, pid 42
// on build-1", "ttl": "30s"} answers 200 with a Lease {id, holder,
// acquired, expires, ttl}, or 409 with code "locked" whose "lock" field
// names the current holder and when its lease expires. The TTL must lie
// between api.MinLockTTL (5 s) and api.MaxLockTTL (10 min); empty means
// api.DefaultLockTTL (30 s). The holder renews with PUT /v1/lock/{id} (200
// with the new expiry; 410 "lease_lost" when the lease expired and someone
// else took it, or was released; 404 "lease_not_found" for an id this host
// never granted) and releases with DELETE /v1/lock/{id} (204, also for a
// lease already gone). A lease past its expiry that nobody took yet can
// still be renewed: nobody held the lock in between. Lease ids are 128
// random bits. GET /v1/lock shows the live lease, id included: anyone
// with the token can already deploy anything, and the id is what a
// force-unlock (DELETE with it) needs when a holder is known to be dead.
// A client that holds the lock (driver.Client.Lock, used by plan.Apply)
// sends its lease id in the Ferry-Lock-Lease header (api.LeaseHeader) of
// every PUT,
// DELETE and rollback, and the host refuses those with 410 "lease_lost"
// unless that lease holds the lock now: a holder that lost its lease (it
// stalled past its TTL and someone else took the lock, or the host
// restarted) cannot go on changing the host. A PUT, DELETE or rollback
// without the header is refused with 409 "locked" (its "lock" field names
// the holder) while any lease holds the lock, so no one interleaves with a
// holder's apply; while nobody holds it, such single-shot requests go
// through as before.
//
// The lock lives in memory only. A restarted host has no lock, and that is
// acceptable: a restart already breaks any apply in flight (its PUTs fail
// while the host is down, and after it they carry a lease the host does
// not know, so they answer 410), and the holder finds out at its next
// renewal, which answers 404, so its driver.HeldLock reports the lease
// lost; persisting the lease would need a write per renewal and would make a restarted host
// wait out the lease of a holder that may have died with it. A holder that
// dies without releasing blocks others for at most its TTL.
//
// The client side of the lock — waiting with backoff, renewing every
// TTL/3, reporting a lost lease, locking a group in endpoint order — is in
// package driver.
package control
