// Package deploy holds the value types shared along ferry's pipeline: the
// resolved, secret-free configuration of an app as it travels from the spec
// (spec), through the builder and the registry (where it is stored beside the
// app's Wasm layers), to the targets that run it.
//
// It is a leaf: it imports only the standard library, so every other package
// may import it without creating a cycle.
package deploy
