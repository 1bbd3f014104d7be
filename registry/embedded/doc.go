// Package embedded runs CNCF Distribution in-process with filesystem
// storage: the registry of ferry's embedded default (`ferry up`,
// `ferry registry serve`) and of tests.
//
// It is a package of its own so that programs that only talk to registries
// (ferry-host on an edge device) do not link Distribution.
package embedded
