// Command ferry is the command-line interface of ferry.
//
// It is thin: each command parses its flags into a struct, calls one package
// (spec, builder, registry, signer, ...), and renders the result as text for
// people or JSON (-o json) for programs. Exit codes are documented in
// exitcodes.go and in the README.
package main
