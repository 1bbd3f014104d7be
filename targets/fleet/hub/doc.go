// Package hub is the agent's fleet side in one place: the device API
// server (targets/fleet/server) over its store, one rollout controller
// (targets/fleet/controller) per fleet target, and the operator's admin
// API over both, which `ferry fleet` speaks (Client).
//
// Open restores every fleet target the hub has seen before (its policy is
// saved beside its rollouts), so that devices polling an agent that just
// restarted are told what their fleet's rollouts say, not an empty desired
// state, before the agent's first round has read the spec again. Target
// returns the controller of a spec fleet target, creating it on first use
// and replacing its policy when the spec changed it; it is what
// targets/open hands the plan for a fleet target.
//
// Routes registers the admin API on a mux that the caller protects with
// the operator's credential (the agent mounts it under its status API's
// bearer token):
//
//	POST   /v1/fleet/tokens                 TokenRequest → CreatedToken (the secret, once)
//	GET    /v1/fleet/tokens                 [server.Token]
//	DELETE /v1/fleet/tokens/{id}            revoke
//	GET    /v1/fleet/devices?selector=S     [server.Device]
//	POST   /v1/fleet/devices/{id}/revoke    revoke a device at once
//	GET    /v1/fleet/rollouts?target=T      [controller.Rollout]
//	POST   /v1/fleet/rollouts/{target}/{app}/{pause|resume|abort}
//
// Remote is a fleet target read over that API (what `ferry plan` run by
// hand plans against): it observes and previews like the agent's
// controller, with the policy of the spec at hand, and never writes.
//
// With Options.Leading (leader election among agent replicas), a hub that
// does not lead answers every device and admin call 503 with Retry-After
// (FollowerRetryAfter), and its owner starts it only once it leads.
//
// Errors are {"error": "..."} with 400, 404 or 409; no answer ever holds a
// device credential, a token's secret (except the one CreatedToken) or a
// variable value.
package hub
