// Command hello-go is ferry's smallest Go app: a plain http.Handler served
// by ferry-host's reactor executor through the Go guest SDK.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
package main

import (
	"fmt"
	"net/http"

	"github.com/ferry-wasm/ferry/sdk"
)

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		name := r.URL.Query().Get("name")
		if name == "" {
			name = "world"
		}
		fmt.Fprintf(w, "Hello, %s, from ferry!\n", name)
	})
	sdk.Handle(mux)
}

// main is never called in a reactor; the SDK serves the handler set in init.
func main() {}
