// Package api holds the wire types of ferry-host's control API: the JSON
// bodies (PutRequest, AppInfo, ListResponse, ErrorBody, LockRequest,
// Lease, LockStatus), the error codes of ErrorBody.Code, the apply lock's
// lease header and TTL bounds, and the keyed secret hashes both sides
// compute (SecretHashKey, SecretHashes).
//
// The server (package control), the host core it calls (package core) and
// the client (package driver) all speak these types, so the client never
// imports the server or the runtime. The package imports nothing of ferry
// but package deploy; the routes are documented in package control.
package api
