package sdk

import (
	"fmt"
	"net/http"
	"testing"
)

// The benchmarks below run natively with go test; what they are for is the
// guest's cost under wasm: build the test binary with GOOS=wasip1
// GOARCH=wasm go test -c, and run it with a small wazero program (not in
// the repository) that gives the ferry imports stub results and passes
// -test.bench. The host calls' own cost is not included.

var benchHeads = []struct{ name, head string }{
	{"curl", "GET\n/?name=bench\nx\n127.0.0.1:1234\n/...\n0\nHUser-Agent: Go-http-client/1.1\n"},
	{"browser", "GET\n/users/42?tab=posts\nexample.com\n10.0.0.7:53122\n/users/:id\n0\n" +
		"HUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\n" +
		"HAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\n" +
		"HAccept-Language: en-US,en;q=0.5\nHAccept-Encoding: gzip, deflate, br\n" +
		"HConnection: keep-alive\nHCookie: session=abcdef0123456789; theme=dark\n" +
		"HUpgrade-Insecure-Requests: 1\nHSec-Fetch-Dest: document\nHSec-Fetch-Mode: navigate\n" +
		"HSec-Fetch-Site: none\nPid=42\n"},
}

func BenchmarkParseHead(b *testing.B) {
	for _, h := range benchHeads {
		b.Run(h.name, func(b *testing.B) {
			head := []byte(h.head)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseHead(head); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// helloMux is examples/hello-go's handler.
func helloMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		name := r.URL.Query().Get("name")
		if name == "" {
			name = "world"
		}
		fmt.Fprintf(w, "Hello, %s, from ferry!\n", name)
	})
	return mux
}

var floorBody = []byte("Hello, bench, from ferry!\n")

// BenchmarkServe is the SDK's whole path for one request but the host calls:
// parse the head, run the handler, send the response.
func BenchmarkServe(b *testing.B) {
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"floor", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(floorBody)
		})},
		{"hello", helloMux()},
	}
	head := []byte(benchHeads[0].head)
	for _, h := range handlers {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			w := newResponseWriter(func(int32, []byte) int32 { return 0 }, func([]byte) int32 { return 0 })
			for b.Loop() {
				if c := handle(h.h, head, w); c != 0 {
					b.Fatal(c)
				}
			}
		})
	}
}
