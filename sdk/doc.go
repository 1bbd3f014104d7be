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
// The handler gets what net/http would give it: a fresh *http.Request per
// request (with its own Header map), path values, a body reader. A response
// without a Content-Type gets one sniffed from its body by the host's
// net/http server, as from a native one; the handler's header map is left
// as the handler set it. The per-request path is kept lean because Go runs
// several times slower compiled to wasm: one allocation holds the request,
// its URL and its first header values, and the response buffers are reused.
//
// Outside wasip1 the package compiles, and every host call returns
// ErrUnsupported, so code using it can be vetted and unit-tested natively.
package sdk
