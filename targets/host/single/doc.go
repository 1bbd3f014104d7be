// Package single is ferry-host's single-app mode (`ferry-host app`): one
// process serves exactly one app, named by digest, as a Kubernetes pod of
// the kubernetes target's mode "host" runs it.
//
// New opens a host core the way every entry point does (core.Open) and
// Run deploys Options.Ref into it with core.Put: the core verifies the
// artifact's cosign signature against the trust policy, pulls it by
// digest, deploys it and health-probes it. Nothing serves before a Put
// succeeded, so an artifact that did not verify is never served: App's
// ServeHTTP answers 503 until then. Run retries a failed Put with
// exponential backoff (Options.RetryMin to Options.RetryMax) for as long as
// it runs, whatever the failure, so a pod does not crash-loop because its
// registry was briefly down, and becomes ready once the registry answers or
// the artifact gets signed.
//
// The app's name is read from the artifact's own config (registry.Inspect:
// the manifest and config only, both checked against the digest), or from
// the state directory when it already holds that digest, so a restarted
// process with an unreachable registry serves again from its state
// (core.Put re-verifies the stored signature locally).
//
// Variable values come from two directories, one file per variable (file
// name = variable name, content = value, exactly): Options.ConfigDir for
// non-secret variables (a mounted ConfigMap) and Options.SecretsDir for
// secret ones (a mounted Secret; it may also set non-secret ones). A file
// in ConfigDir naming a secret variable is ignored with a warning, so a
// secret never comes from a ConfigMap; files naming variables the app does
// not declare, and names starting with "." (Kubernetes' ..data links), are
// skipped. Run re-reads both every Options.ReloadInterval (10 s) and, when
// a value changed, puts the same digest again with the new values: the
// core reconfigures the running app in place, without a restart and
// without a new version. Values are never logged.
//
// HealthHandler serves GET /livez (200 while the process runs), GET
// /readyz (200 only while the app is deployed, verified and healthy by its
// own health probe; else 503 with a one-line reason, which starts with
// "signature: " when verification failed) and GET /metrics (Prometheus:
// the core's collectors and ferry_host_app_ready,
// ferry_host_app_put_attempts_total).
//
// ServeHTTP serves the one app on every Host header: when the app declares
// host names and a request names another (a pod is reached by its Service
// name, its IP or an ingress host), the request is routed as if it named
// the app's first host.
package single
