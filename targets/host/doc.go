// Package host is ferry-host's runtime engine: it serves many WebAssembly
// apps from one http.Handler with wazero.
//
// A Runtime compiles each component's module once per digest (wazero's
// compiler where supported, the interpreter elsewhere, with an on-disk
// compilation cache shared across restarts), validates its imports and
// exports against the guest ABI (see ABI.md and package abi), and serves it
// with one of two executors:
//
//   - WAGI: CGI over WASI preview 1, a fresh instance per request.
//   - Reactor: the module is initialised once (_initialize) and its
//     ferry_handle export is called per request; instances are pooled.
//
// Deploy loads a new version of an app beside the running one, probes its
// health through the real handler and only then swaps it in atomically;
// in-flight requests finish on the old version, which stays loaded for an
// instant Rollback. Each request is isolated: memory limit, deadline,
// response size cap and a per-component concurrency limit. A trap fails
// that request alone with 500, a timeout with 504.
//
// Compiling leaves much more garbage than it keeps (about 300 KB for a tiny
// WAT module), so a mass deploy keeps the Go collector busy. A WAGI module is
// instantiated once at deploy without running it (an instantiation error
// refuses the deploy), and a Deploy that brought the heap close to its next
// collection runs that collection before it returns (Options.NoDeployGC
// turns it off), so that it does not run beside the requests that follow;
// see gc.go. A WAGI request leaves about 14 KB of garbage (most of it
// wazero's call stack for the new instance), so with a small live heap the
// collector would run every few hundred requests: New therefore keeps a
// process-wide heap ballast (Options.GCBallast, 32 MiB by default) that the
// collector counts as live but that is never touched. GOGC and GOMEMLIMIT
// tune the collector as for any Go program (the ballast counts against
// GOMEMLIMIT).
//
// Guests reach the host through the "ferry" import module: key-value stores
// (bbolt files under Options.StateDir), variables and secrets, outbound HTTP
// to declared hosts only, and structured logging. Deployed apps are not
// persisted by this package: a caller that wants them back after a restart
// stores what it deployed and calls Deploy again.
//
// A Runtime is safe for concurrent use.
package host
