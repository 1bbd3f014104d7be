package host

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// floorBody is what the reactor-floor guest and its native twin answer.
var floorBody = []byte("Hello, bench, from ferry!\n")

// floorNative is testdata/reactor-floor's handler, compiled natively.
func floorNative() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(floorBody)
	})
}

// BenchmarkReactorFloor is BenchmarkReactor with guests whose handler does
// next to nothing (one header, a fixed 26-byte body), against the same
// handler compiled natively. go/ is a Go guest using the SDK
// (testdata/reactor-floor): what separates its ratio from 1 is the
// runtime's, the Go runtime's and the SDK's overhead per request; what
// separates BenchmarkReactor's from it is the handler's own cost in wasm.
// wat/ is the same response from a hand-written module
// (testdata/reactor-wat.wat) with no language runtime at all: what separates
// its ratio from 1 is ferry-host's own cost per reactor request. The direct
// sub-benchmark calls the runtime's ServeHTTP on the Go guest without HTTP,
// as BenchmarkReactorHandler does, on a warm instance that is never
// recycled (so without the amortised cost of a new instance every
// ReactorMaxRequests), and reports the native handler's time per request
// beside it.
func BenchmarkReactorFloor(b *testing.B) {
	g := goGuest(b, "targets/host/testdata/reactor-floor")
	nativeURL, stop2 := serve(b, floorNative())
	defer stop2()
	for _, guest := range []struct {
		name string
		wasm []byte
	}{{"go", g}, {"wat", fixture(b, "reactor-wat")}} {
		b.Run(guest.name, func(b *testing.B) {
			rt := benchEnv(b, Options{CompilationCacheDir: sharedCacheDir(b)})
			if err := rt.Deploy(context.Background(), app("floor", deploy.ExecutorReactor, guest.wasm, "/..."), bundle(guest.wasm)); err != nil {
				b.Fatal(err)
			}
			wasmURL, stop := serve(b, rt)
			defer stop()
			for _, clients := range []int{1, 2} {
				b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
					compare(b, nativeURL+"/?name=bench", wasmURL+"/?name=bench", string(floorBody), clients)
				})
			}
		})
	}
	b.Run("direct", func(b *testing.B) { benchFloorDirect(b, g) })
}

// benchFloorDirect is the direct sub-benchmark of BenchmarkReactorFloor: a
// runtime of its own whose instances are never recycled, so that what is
// measured is the steady state.
func benchFloorDirect(b *testing.B, g []byte) {
	rt := benchEnv(b, Options{CompilationCacheDir: sharedCacheDir(b), ReactorMaxRequests: math.MaxInt})
	if err := rt.Deploy(context.Background(), app("floor", deploy.ExecutorReactor, g, "/..."), bundle(g)); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/?name=bench", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	// The native handler's time, measured the same way, first.
	native := floorNative()
	const nativeRuns = 20000
	t0 := time.Now()
	for range nativeRuns {
		native.ServeHTTP(&nullWriter{h: http.Header{}}, req)
	}
	nativeNs := float64(time.Since(t0).Nanoseconds()) / nativeRuns
	for range 5000 { // warm the instance (past its first garbage collection)
		rt.ServeHTTP(&nullWriter{h: http.Header{}}, req)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &nullWriter{h: http.Header{}}
		rt.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
	b.ReportMetric(nativeNs, "native-ns/op")
}
