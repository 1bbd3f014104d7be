// Command kv-counter counts its visits in ferry-host's key-value store
// "default": every request increments the counter and answers its value.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o counter.wasm .
package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ferry-wasm/ferry/sdk"
	"github.com/ferry-wasm/ferry/sdk/kv"
)

func init() {
	store := kv.Open("default")
	sdk.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		v, err := store.Get("count")
		switch {
		case errors.Is(err, sdk.ErrNotFound):
		case err != nil:
			http.Error(w, "reading the counter: "+err.Error(), http.StatusInternalServerError)
			return
		default:
			n, _ = strconv.Atoi(string(v))
		}
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		n++
		if err := store.Set("count", []byte(strconv.Itoa(n))); err != nil {
			http.Error(w, "writing the counter: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%d\n", n)
	})
}

// main is never called in a reactor; the SDK serves the handler set in init.
func main() {}
