// Package sdk lets a Go author serve a plain http.Handler from ferry-host's
// reactor executor, and reach the host's capabilities: variables and
// secrets (Variable), outbound HTTP to allowed hosts (Transport,
// HTTPClient), and structured logging (Logger). Key-value stores are in
// package sdk/kv.
//
// A guest registers its handler in init (a reactor's main is never run):
//
//	package main
//
//	import (
//		"net/http"
//
//		"github.com/ferry-wasm/ferry/sdk"
//	)
//
//	func init() {
//		sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
//			w.Write([]byte("hello\n"))
//		})
//	}
//
//	func main() {}
//
// and is built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o app.wasm .
//
// The SDK exports ferry_handle (see targets/host/ABI.md). Route parameters
// ("/users/:id") are set as path values (r.PathValue("id")); the remainder
// of a "/..." route is r.PathValue("...").
//
// Outside wasip1 the package compiles, and every host call returns
// ErrUnsupported, so code using it can be vetted and unit-tested natively.
package sdk
