package host

// Benchmarks of the performance goals. Each pairs the runtime with a
// native Go net/http handler doing the same work, over loopback HTTP, in the
// same run, and reports the ratio. Run them with
//
//	go test -run '^$' -bench . -benchtime 2000x ./targets/host
//
// (density: FERRY_BENCH_DENSITY=10000 for the 10,000-app figure; the
// density, swap and restart benchmarks do their whole job once per
// iteration, so -benchtime 1x is enough for them).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// serve starts an HTTP server for h on 127.0.0.1:0.
func serve(b *testing.B, h http.Handler) (string, func()) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}

// load sends n GET requests to url from clients concurrent keep-alive
// clients (each its own http.Client, so its own connection) and returns the
// elapsed time and every request's latency; failures (an error, a status
// other than 200 or a body other than want) are counted in fails.
func load(b *testing.B, url, want string, n int, clients []*http.Client, fails *atomic.Int64) (time.Duration, []time.Duration) {
	b.Helper()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				resp, err := c.Get(url)
				if err != nil {
					fails.Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != 200 || string(body) != want {
					if fails.Add(1) == 1 {
						b.Logf("GET %s = %d %q (%v); want 200 %q", url, resp.StatusCode, body, err, want)
					}
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), lat
}

func newClients(n int) []*http.Client {
	cs := make([]*http.Client, n)
	for i := range cs {
		cs[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	}
	return cs
}

// compare measures native and wasm with the same load and reports both and
// their ratio. The two are interleaved in rounds, so that a change in the
// machine's load (it is shared) hits both alike; each side keeps its own
// keep-alive connections throughout. Both must answer every request with
// 200 and exactly the body want; any other answer fails the benchmark.
func compare(b *testing.B, nativeURL, wasmURL, want string, clients int) {
	n := max(b.N, 200)
	nc, wc := newClients(clients), newClients(clients)
	defer func() {
		for _, c := range append(nc, wc...) {
			c.CloseIdleConnections()
		}
	}()
	var nf, wf atomic.Int64
	// Warm both paths (connections, pools, caches).
	load(b, nativeURL, want, 200, nc, &nf)
	load(b, wasmURL, want, 200, wc, &wf)
	const rounds = 10
	per := max(n/rounds, 20)
	var nt, wt time.Duration
	var nl, wl []time.Duration
	b.ResetTimer()
	for r := range rounds {
		first, second := nativeURL, wasmURL
		if r%2 == 1 {
			first, second = wasmURL, nativeURL
		}
		for _, u := range []string{first, second} {
			if u == nativeURL {
				d, l := load(b, u, want, per, nc, &nf)
				nt, nl = nt+d, append(nl, l...)
			} else {
				d, l := load(b, u, want, per, wc, &wf)
				wt, wl = wt+d, append(wl, l...)
			}
		}
	}
	b.StopTimer()
	if nf.Load()+wf.Load() > 0 {
		b.Fatalf("failed or wrong answers: native %d, wasm %d (want 200 %q)", nf.Load(), wf.Load(), want)
	}
	slices.Sort(nl)
	slices.Sort(wl)
	np50, wp50 := nl[len(nl)/2], wl[len(wl)/2]
	nr, wr := float64(len(nl))/nt.Seconds(), float64(len(wl))/wt.Seconds()
	b.ReportMetric(nr, "native-rps")
	b.ReportMetric(wr, "wasm-rps")
	b.ReportMetric(wr/nr, "ratio")
	b.ReportMetric(float64(np50.Microseconds()), "native-p50-µs")
	b.ReportMetric(float64(wp50.Microseconds()), "wasm-p50-µs")
	b.ReportMetric(float64((wp50 - np50).Microseconds()), "added-p50-µs")
}

func benchEnv(b *testing.B, opts Options) *Runtime {
	b.Helper()
	rt, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// BenchmarkWAGI: the tiny WAT guest, a fresh instance per request, against a
// native handler writing the same response. Goal: ratio >= 0.6, added p50
// <= 50 µs, at 1 and 2 clients.
func BenchmarkWAGI(b *testing.B) {
	rt := benchEnv(b, Options{})
	h := fixture(b, "hello")
	if err := rt.Deploy(context.Background(), app("tiny", deploy.ExecutorWAGI, h, "/hello"), bundle(h)); err != nil {
		b.Fatal(err)
	}
	wasmURL, stop := serve(b, rt)
	defer stop()
	nativeURL, stop2 := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello\n"))
	}))
	defer stop2()
	for _, clients := range []int{1, 2} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			compare(b, nativeURL+"/hello", wasmURL+"/hello", "hello\n", clients)
		})
	}
}

// helloNative is examples/hello-go's handler, compiled natively.
func helloNative() http.Handler {
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
	return mux
}

// BenchmarkReactor: examples/hello-go on pooled reactor instances against the
// same handler compiled natively. Goal: ratio >= 0.85.
func BenchmarkReactor(b *testing.B) {
	rt := benchEnv(b, Options{CompilationCacheDir: sharedCacheDir(b)})
	g := goGuest(b, "examples/hello-go")
	if err := rt.Deploy(context.Background(), app("hello-go", deploy.ExecutorReactor, g, "/..."), bundle(g)); err != nil {
		b.Fatal(err)
	}
	wasmURL, stop := serve(b, rt)
	defer stop()
	nativeURL, stop2 := serve(b, helloNative())
	defer stop2()
	for _, clients := range []int{1, 2} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			compare(b, nativeURL+"/?name=bench", wasmURL+"/?name=bench", "Hello, bench, from ferry!\n", clients)
		})
	}
}

// distinctHello returns a copy of the hello fixture whose greeting is id
// (6 bytes), so every app has its own digest and its own compiled module.
func distinctHello(base []byte, id string) []byte {
	i := bytes.Index(base, []byte("hello\n"))
	out := bytes.Clone(base)
	copy(out[i:i+6], id)
	return out
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkDensity deploys N distinct small apps (FERRY_BENCH_DENSITY,
// default 1000), each on its own host name, and reports deploy time, process
// RSS, and the latency of first requests right after deploy (p50, p99, max
// over every 100th app). Goal at 10,000: RSS <= 1 GiB, deploy <= 60 s, first
// request <= 1 ms. Right after each first request the same client sends one
// request to a native handler on another listener: its latencies
// (native-control-*) show what the machine itself adds. Halfway between two
// measured apps, a native request goes first right after a deploy
// (native-cold-*): what a request costs a native server when compiling
// has just evicted the caches the HTTP path runs from. After the last
// deploy, 100 more apps get their first request (first-req-after-*): the
// same cold start without deploys (and their garbage collection) going on.
func BenchmarkDensity(b *testing.B) {
	n := 1000
	if s := os.Getenv("FERRY_BENCH_DENSITY"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	base := fixture(b, "hello")
	mods := make([][]byte, n)
	for i := range mods {
		mods[i] = distinctHello(base, fmt.Sprintf("%05d\n", i))
	}
	nativeURL, stopNative := serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello\n"))
	}))
	defer stopNative()
	for range b.N {
		rss0 := rssBytes()
		rt, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		url, stop := serve(b, rt)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
		get := func(u, host string) (time.Duration, string) {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Host = host
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return time.Since(t0), string(body)
		}
		get(nativeURL+"/", "") // open the control connection
		var firsts, controls, colds []time.Duration
		deployed := make(chan error)
		start := time.Now()
		for i, m := range mods {
			a := app(fmt.Sprintf("app-%d", i), deploy.ExecutorWAGI, m, "/...")
			a.Hosts = []string{fmt.Sprintf("app-%d.test", i)}
			// Deploys run on their own goroutine, as under the control
			// API: a goroutine that allocates as much as a compile carries
			// GC assist debt into its next allocations, which is not the
			// client's to pay.
			go func() { deployed <- rt.Deploy(context.Background(), a, bundle(m)) }()
			if err := <-deployed; err != nil {
				b.Fatal(err)
			}
			if i%max(n/100, 1) == 0 { // first request of every 100th app, right after its deploy
				d, body := get(url+"/", a.Hosts[0])
				firsts = append(firsts, d)
				if want := fmt.Sprintf("%05d\n", i); body != want {
					b.Fatalf("app %d answered %q, want %q", i, body, want)
				}
				d, _ = get(nativeURL+"/", "")
				controls = append(controls, d)
			} else if i%max(n/100, 1) == max(n/200, 1) { // halfway: a native request first
				d, _ := get(nativeURL+"/", "")
				colds = append(colds, d)
			}
		}
		deployTime := time.Since(start)
		rss := rssBytes()
		// First requests of apps never asked before, once the deploys are
		// over (without a compile storm going on beside them).
		var lates []time.Duration
		for i := max(n/200, 1); i < n; i += max(n/100, 1) {
			if i%max(n/100, 1) == 0 {
				continue
			}
			d, body := get(url+"/", fmt.Sprintf("app-%d.test", i))
			lates = append(lates, d)
			if want := fmt.Sprintf("%05d\n", i); body != want {
				b.Fatalf("app %d answered %q, want %q", i, body, want)
			}
		}
		slices.Sort(firsts)
		slices.Sort(controls)
		slices.Sort(lates)
		slices.Sort(colds)
		q := func(l []time.Duration, p float64) float64 { // nearest rank
			return float64(l[max(int(math.Ceil(p*float64(len(l))))-1, 0)].Microseconds())
		}
		b.ReportMetric(float64(n), "apps")
		b.ReportMetric(deployTime.Seconds(), "deploy-s")
		b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
		b.ReportMetric(float64(rss-rss0)/(1<<20), "rss-growth-MiB")
		b.ReportMetric(q(firsts, 0.5), "first-req-p50-µs")
		b.ReportMetric(q(firsts, 0.99), "first-req-p99-µs")
		b.ReportMetric(q(firsts, 1), "first-req-max-µs")
		b.ReportMetric(q(lates, 0.5), "first-req-after-p50-µs")
		b.ReportMetric(q(lates, 0.99), "first-req-after-p99-µs")
		b.ReportMetric(q(lates, 1), "first-req-after-max-µs")
		b.ReportMetric(q(controls, 0.5), "native-control-p50-µs")
		b.ReportMetric(q(controls, 1), "native-control-max-µs")
		b.ReportMetric(q(colds, 0.5), "native-cold-p50-µs")
		b.ReportMetric(q(colds, 0.99), "native-cold-p99-µs")
		client.CloseIdleConnections()
		stop()
		rt.Close(context.Background())
	}
}

// swapVersions is how many new versions BenchmarkSwapsUnderLoad deploys.
const swapVersions = 100

// BenchmarkSwapsUnderLoad deploys 100 new versions, each answering its own
// body ("v0001\n" ...), while two clients keep requesting. Every failed
// request (an error, a status other than 200, a body that is no version)
// is counted in failed. Every answer is also checked for order: a request
// must never see a version older than one that had already answered (any
// client) or than one whose Deploy had already returned when it was sent,
// nor one whose Deploy had not yet begun; such answers are counted in stale
// and fail the benchmark. Goal: zero of both.
func BenchmarkSwapsUnderLoad(b *testing.B) {
	h := fixture(b, "hello")
	mods := make([][]byte, swapVersions+1)
	for i := range mods {
		mods[i] = distinctHello(h, fmt.Sprintf("v%04d\n", i))
	}
	var totalStale int64
	for range b.N {
		rt := benchEnv(b, Options{})
		mk := func(i int) deploy.App {
			a := app("swap", deploy.ExecutorWAGI, mods[i], "/...")
			a.Components[0].Health = &deploy.Health{Path: "/"}
			return a
		}
		if err := rt.Deploy(context.Background(), mk(0), bundle(mods[0])); err != nil {
			b.Fatal(err)
		}
		url, stop := serve(b, rt)
		var reqs, fails, stale atomic.Int64
		// seen is the newest version that has answered; live the newest
		// whose Deploy returned; begun the newest whose Deploy was called.
		var seen, live, begun atomic.Int64
		var firstMu sync.Mutex
		var first string
		note := func(format string, args ...any) {
			firstMu.Lock()
			if first == "" {
				first = fmt.Sprintf(format, args...)
			}
			firstMu.Unlock()
		}
		done := make(chan struct{})
		var wg sync.WaitGroup
		for client := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Transport: &http.Transport{}}
				for {
					select {
					case <-done:
						return
					default:
					}
					floor := max(seen.Load(), live.Load())
					resp, err := c.Get(url + "/")
					reqs.Add(1)
					if err != nil {
						fails.Add(1)
						note("client %d: %v", client, err)
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					ceiling := begun.Load()
					v, err := swapVersion(body)
					if resp.StatusCode != 200 || err != nil {
						fails.Add(1)
						note("client %d: %d %q", client, resp.StatusCode, body)
						continue
					}
					if v < floor || v > ceiling {
						stale.Add(1)
						note("client %d: answered v%04d after v%04d had answered or gone live (newest begun v%04d)", client, v, floor, ceiling)
					}
					for {
						old := seen.Load()
						if v <= old || seen.CompareAndSwap(old, v) {
							break
						}
					}
				}
			}()
		}
		for i := 1; i <= swapVersions; i++ {
			time.Sleep(2 * time.Millisecond)
			begun.Store(int64(i))
			if err := rt.Deploy(context.Background(), mk(i), bundle(mods[i])); err != nil {
				b.Fatal(err)
			}
			live.Store(int64(i))
		}
		close(done)
		wg.Wait()
		stop()
		b.ReportMetric(swapVersions, "swaps")
		b.ReportMetric(float64(reqs.Load()), "requests")
		b.ReportMetric(float64(fails.Load()), "failed")
		b.ReportMetric(float64(stale.Load()), "stale")
		if first != "" {
			b.Logf("first wrong answer: %s", first)
		}
		totalStale += stale.Load()
	}
	if totalStale > 0 {
		b.Fatalf("%d answers came from an older version than one already seen or live", totalStale)
	}
}

// swapVersion reads the version of a BenchmarkSwapsUnderLoad body, "vNNNN\n".
func swapVersion(body []byte) (int64, error) {
	if len(body) != 6 || body[0] != 'v' || body[5] != '\n' {
		return 0, fmt.Errorf("not a version: %q", body)
	}
	return strconv.ParseInt(string(body[1:5]), 10, 64)
}

// warmRestarts is how many restarts one iteration of BenchmarkWarmRestart
// times (so that -benchtime 1x still gives a distribution).
const warmRestarts = 20

// BenchmarkWarmRestart: a new Runtime on a warm compilation cache deploys
// examples/hello-go and answers its first request, warmRestarts times per
// iteration; it reports the p50, p95 and worst of every restart timed.
// Goal: p95 <= 150 ms.
func BenchmarkWarmRestart(b *testing.B) {
	g := goGuest(b, "examples/hello-go")
	dir := b.TempDir()
	a := app("hello-go", deploy.ExecutorReactor, g, "/...")
	a.Components[0].Health = &deploy.Health{Path: "/healthz"}
	coldStart := time.Now()
	rt, err := New(Options{StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Deploy(context.Background(), a, bundle(g)); err != nil {
		b.Fatal(err)
	}
	cold := time.Since(coldStart)
	rt.Close(context.Background())
	b.ResetTimer()
	var lat []time.Duration
	for range b.N {
		for range warmRestarts {
			t0 := time.Now()
			rt, err := New(Options{StateDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			if err := rt.Deploy(context.Background(), a, bundle(g)); err != nil {
				b.Fatal(err)
			}
			url, stop := serve(b, rt)
			resp, err := http.Get(url + "/")
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if resp.StatusCode != 200 || string(body) != "Hello, world, from ferry!\n" {
				b.Fatalf("first response after restart: %d %q", resp.StatusCode, body)
			}
			lat = append(lat, d)
			stop()
			rt.Close(context.Background())
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { // nearest rank
		return float64(lat[max(int(math.Ceil(p*float64(len(lat))))-1, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(cold.Milliseconds()), "cold-deploy-ms")
	b.ReportMetric(float64(len(lat)), "restarts")
	b.ReportMetric(q(0.5), "warm-first-response-ms-p50")
	b.ReportMetric(q(0.95), "warm-first-response-ms-p95")
	b.ReportMetric(q(1), "warm-first-response-ms-max")
}

// BenchmarkWAGIHandler measures the runtime's own cost per WAGI request,
// without HTTP: ServeHTTP on a recorder.
func BenchmarkWAGIHandler(b *testing.B) {
	rt := benchEnv(b, Options{})
	h := fixture(b, "hello")
	if err := rt.Deploy(context.Background(), app("tiny", deploy.ExecutorWAGI, h, "/hello"), bundle(h)); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/hello", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := &nullWriter{h: http.Header{}}
		rt.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
	}
}

type nullWriter struct {
	h    http.Header
	code int
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) WriteHeader(c int)           { w.code = c }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkReactorHandler measures the runtime's own cost per reactor
// request to examples/hello-go, without HTTP.
func BenchmarkReactorHandler(b *testing.B) {
	rt := benchEnv(b, Options{CompilationCacheDir: sharedCacheDir(b)})
	g := goGuest(b, "examples/hello-go")
	if err := rt.Deploy(context.Background(), app("hello-go", deploy.ExecutorReactor, g, "/..."), bundle(g)); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/?name=bench", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	b.ReportAllocs()
	for b.Loop() {
		w := &nullWriter{h: http.Header{}}
		rt.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
	}
}

// BenchmarkDeployGo measures a cold deploy of examples/hello-go (verify the
// digest, instrument, compile, instantiate, health probe) with an empty
// compilation cache, compiling on one goroutine and on GOMAXPROCS of them,
// in the same run.
func BenchmarkDeployGo(b *testing.B) {
	g := goGuest(b, "examples/hello-go")
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			for b.Loop() {
				rt, err := New(Options{CompileWorkers: workers})
				if err != nil {
					b.Fatal(err)
				}
				if err := rt.Deploy(context.Background(), app("hello-go", deploy.ExecutorReactor, g, "/..."), bundle(g)); err != nil {
					b.Fatal(err)
				}
				rt.Close(context.Background())
			}
		})
	}
}
