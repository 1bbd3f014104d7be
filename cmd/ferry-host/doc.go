// Command ferry-host is ferry's runtime daemon for bare hosts and edge
// devices: it serves many WebAssembly apps on one HTTP listener (package
// targets/host) and takes deployments through an authenticated control API
// (package targets/host/control, over the host core of package
// targets/host/core, built by control.NewHost as `ferry up` builds its
// host), verifying every artifact's signature against its own trust keys
// before it runs anything. What it deploys is
// kept in its state directory (package targets/host/state), so a restart
// serves the same apps again without the registry.
//
//	ferry-host --state-dir /var/lib/ferry-host --trust-key /etc/ferry/cosign.pub \
//	    --token-file /etc/ferry/host-token
//
// Run `ferry-host -h` for every flag. On start it prints one line with the
// addresses it serves on (the real ports when given :0):
//
//	ferry-host: serving apps on http://127.0.0.1:8080, control on http://127.0.0.1:8081
//
// Registry logins are per registry host and go only to that host: the
// Docker config file's "auths" (and credential helpers), and
// FERRY_REGISTRY_USERNAME/PASSWORD/TOKEN for the one host named in
// FERRY_REGISTRY_HOST (without it the host refuses to start). A PUT that
// names another registry is pulled anonymously.
//
// SIGTERM or SIGINT stop it gracefully: listeners close, in-flight requests
// finish (up to --shutdown-timeout), then the runtime is released.
//
// `ferry-host app` is single-app mode (package targets/host/single), as a
// pod of the kubernetes target runs it: no control API; it pulls the one
// artifact --ref names by digest, verifies it against --trust-key (a file,
// or a directory of *.pub files), serves it on --listen, answers /livez,
// /readyz and /metrics on --health-listen, and takes variable values from
// --config-dir and --secrets-dir, re-read every --reload-interval:
//
//	ferry-host app --ref registry.example.com/apps/hello@sha256:4f1c... \
//	    --trust-key /etc/ferry/trust --config-dir /etc/ferry/config \
//	    --secrets-dir /etc/ferry/secrets --state-dir /var/lib/ferry
//
// Run `ferry-host app --help` for every flag. Its first line on stdout is
//
//	ferry-host app: serving REF on http://[::]:8080, health on http://[::]:8081
//
// The first argument picks the mode (run.go); without one it is the
// multi-app daemon above.
package main
