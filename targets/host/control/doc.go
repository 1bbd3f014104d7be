// Package control is ferry-host's control API: the HTTP handler that lets
// the ferry agent (and people) list, deploy, roll back and delete apps on a
// host. Its wire types are in package api; the Go client that speaks it
// and implements targets.Target for host targets is package driver.
//
// The API is JSON over HTTP under the versioned prefix /v1/:
//
//	GET    /v1/apps                  list (AppInfo per app)
//	GET    /v1/apps/{name}           one app
//	PUT    /v1/apps/{name}           deploy: body PutRequest {ref, digest, secrets, owner}
//	DELETE /v1/apps/{name}           remove (absent is fine)
//	POST   /v1/apps/{name}/rollback  switch back to the previous version
//	GET    /v1/lock                  the apply lock (LockStatus)
//	POST   /v1/lock                  take it: body LockRequest {holder, ttl}
//	PUT    /v1/lock/{id}             renew lease id
//	DELETE /v1/lock/{id}             release lease id (gone is fine)
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
//
// # The apply lock
//
// The host keeps one apply lock, so that two `ferry apply` runs against it
// from different machines never interleave (a local flock only covers one
// machine). It is a lease: POST /v1/lock {"holder": "ferry apply, pid 42
// on build-1", "ttl": "30s"} answers 200 with a Lease {id, holder,
// acquired, expires, ttl}, or 409 with code "locked" whose "lock" field
// names the current holder and when its lease expires. The TTL must lie
// between MinLockTTL (5 s) and MaxLockTTL (10 min); empty means
// DefaultLockTTL (30 s). The holder renews with PUT /v1/lock/{id} (200
// with the new expiry; 410 "lease_lost" when the lease expired and someone
// else took it, or was released; 404 "lease_not_found" for an id this host
// never granted) and releases with DELETE /v1/lock/{id} (204, also for a
// lease already gone). A lease past its expiry that nobody took yet can
// still be renewed: nobody held the lock in between. Lease ids are 128
// random bits. GET /v1/lock shows the live lease, id included: anyone
// with the token can already deploy anything, and the id is what a
// force-unlock (DELETE with it) needs when a holder is known to be dead.
// A Client that holds the lock (Client.Lock, used by sync.Apply) sends its
// lease id in the Ferry-Lock-Lease header (LeaseHeader) of every PUT,
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
// renewal, which answers 404, so its HeldLock reports the lease lost;
// persisting
// the lease would need a write per renewal and would make a restarted host
// wait out the lease of a holder that may have died with it. A holder that
// dies without releasing blocks others for at most its TTL.
//
// On the client side, Client.Lock (and Group.Lock, which locks each host in
// the order of their sorted endpoints so that groups sharing hosts cannot
// deadlock) implements package sync's Locker: it waits, polling with
// backoff, until it gets the lease, renews it every TTL/3 until unlocked,
// and logs a lost lease to ClientOptions.Logger; Client.Hold returns a
// HeldLock whose Lost channel and Err report the loss to code.
package control
