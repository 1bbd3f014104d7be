// Package faultproxy is a loopback TCP proxy for reliability tests: it sits
// between a real client (the agent, a host) and a real server (a CNCF
// Distribution registry, a git http server) and injects the faults a
// network and a failing server cause, on command: the server down
// (connections refused), slow (added latency, a bandwidth cap), connections
// reset or cut short (truncated) in the middle of a transfer, and bytes
// changed in flight (corruption that only a digest check catches).
//
// Faults that depend on content fire where a given byte pattern passes
// through the proxy (for example a wasm module's greeting inside a blob),
// so a test can cut "this blob, mid-way" without knowing HTTP. A fault
// fires a bounded number of times, after which traffic passes again, to
// prove that retries get through.
//
// It listens on 127.0.0.1 only. It is test infrastructure: nothing in the
// product imports it.
package faultproxy
