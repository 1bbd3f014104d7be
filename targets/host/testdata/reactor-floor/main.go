// Command reactor-floor is the Go reactor guest of BenchmarkReactorFloor: a
// handler doing as little as a handler can (one header, a fixed 26-byte
// body), so that what it costs is the runtime's and the SDK's overhead
// rather than the handler's own work.
package main

import (
	"net/http"

	"github.com/ferry-wasm/ferry/sdk"
)

// body has the length of examples/hello-go's answer to ?name=bench.
var body = []byte("Hello, bench, from ferry!\n")

func init() {
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
}

// main is never called in a reactor.
func main() {}
