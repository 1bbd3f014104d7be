// Package statestore keeps the in-cluster agent's durable state in one
// ConfigMap of its own namespace, so that a new leader (a pod with an
// empty disk) continues where the old one stopped.
//
// A ConfigMap holds the state as opaque bytes (the agent's gzip-compressed
// history snapshot) under binaryData key "state.json.gz". Every Save is a
// compare-and-swap: an update carrying the resourceVersion this process
// last read or wrote. A conflict means another writer came between — a
// deposed leader finishing its last write — and Save reads the object
// again and writes once more, since the caller is the leader and its own
// history holds everything it loaded plus what it did since. MaxBytes
// keeps a state under the apiserver's 1 MiB limit of a ConfigMap, with
// room for the object's metadata.
//
// The agent's RBAC needs only get and update on that one ConfigMap when
// the install manifest creates it (ferry install kubernetes does); Save
// creates it when it is missing and the rights allow.
package statestore
