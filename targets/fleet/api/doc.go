// Package api holds the wire types of the fleet device API: the protocol
// between an edge device (ferry-host in device mode) and the agent's device
// server. Both sides import it; it imports only the standard library, so
// the device binary links nothing of the agent, the spec language or the
// rollout engine.
//
// # Routes
//
// All bodies are JSON. Every route but enrollment needs the device's own
// credential as "Authorization: Bearer <credential>".
//
//	POST /v1/enroll                 EnrollRequest  → 201 EnrollResponse
//	GET  /v1/devices/{id}/desired   → 200 Desired (ETag) | 304 after Wait
//	PUT  /v1/devices/{id}/status    StatusReport   → 204
//
// Desired state is versioned. A device sends the version it has in
// If-None-Match (quoted, as an ETag) and how long it may wait in the
// "wait" query parameter (a Go duration, at most MaxWait): the server
// answers at once with 200 when its version differs, else holds the
// request until it changes (200) or the wait ends (304 Not Modified).
//
// # Errors
//
// Every error answer has an ErrorBody. 401: no credential, or one the
// server does not know (wrong, revoked). 403: a valid credential used on
// another device's path. 400: a malformed body. An enrollment token that
// is unknown, expired, used up or revoked is 401 with CodeBadToken.
package api
