// Package credential is ferry's one notion of a registry login: the
// [Credential] value and the [Func] that looks one up by registry host.
//
// The registry client (oras-go) and the signer (go-containerregistry, for
// cosign) each talk to registries with their own library; both take their
// logins from here, so a login is resolved once (by the registry client's
// [Func], which reads explicit logins, the environment's one and the Docker
// config) and handed to the signer as is, with no conversion between the
// two libraries' types in between. A fleet device wires the same way.
//
// The package is a leaf: it imports only the standard library, so neither
// the registry nor the signer gains the other's dependencies by sharing it.
// Credential's String, GoString and LogValue never show a secret.
package credential
