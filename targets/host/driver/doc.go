// Package driver is the host driver: the client side of ferry-host's
// control API (package control serves it; package api holds the wire
// types both sides speak). The ferry agent, ferry plan/apply and ferry up
// reach a host only through it.
//
// Client talks to one ferry-host. It implements targets.Target (Observe
// lists GET /v1/apps, Put is PUT /v1/apps/{name}, Delete is DELETE),
// targets.RollBacker (POST /v1/apps/{name}/rollback),
// targets.OwnerRecorder and targets.SecretHasher (the keyed hashes of
// api.SecretHashes under the client's token), and the apply lock: Hold and
// Lock take the host's lease (POST /v1/lock), renew it every TTL/3 and
// release it; while held, every PUT, DELETE and rollback carries the lease
// in api.LeaseHeader so the host refuses them once the lease is lost.
// Errors are *APIError values wrapping the package's sentinels
// (ErrUnauthorized, ErrNotFound, ErrLocked, ErrLeaseLost, ...) or the
// targets sentinels: 403 is targets.ErrVerification, 422
// targets.ErrUnhealthy, 502/503/504 or no answer targets.ErrUnavailable.
//
// Group is a host target of several ferry-hosts running the same apps: it
// fans each call out in parallel, merges what the hosts report
// conservatively (an app is at a digest, and healthy, only when every host
// says so), and locks every host in the order of their sorted endpoints so
// that groups sharing hosts cannot deadlock.
//
// The package imports targets and api only: no runtime, no wazero, no
// server.
package driver
