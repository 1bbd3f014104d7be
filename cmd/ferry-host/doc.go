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
package main
