// Package layering holds ferry's import rules as a test: which packages may
// reach which (through any chain of imports), checked on the module's real
// import graph as `go list -deps` reports it, on every `make test`.
//
// The rules are the table in layering_test.go, each with the reason it
// exists; the README's "Architecture" section says the same in prose. A change
// that breaks one fails the test with the chain of imports that does it.
// Test files are not checked: a test may reach across layers to set up real
// parts.
package layering
