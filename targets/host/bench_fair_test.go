package host

import (
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// BenchmarkNeighbourUnderSpin measures a tiny neighbour app's latency (the
// hello WAT guest, 100 sequential requests) alone, then while 8 clients keep
// an app of spinning guests (loop, 1 s deadline) busy, first with no limit
// and then with Options.MaxAppExecutions = GOMAXPROCS-1 (at least 1). It
// reports p50/p99 of each and the p99 ratios to the baseline
// (goal: within 2x). Run with -benchtime 1x.
func BenchmarkNeighbourUnderSpin(b *testing.B) {
	capN := max(1, runtime.GOMAXPROCS(0)-1)
	for range b.N {
		base50, base99 := neighbourLatency(b, 0, 0)
		spin50, spin99 := neighbourLatency(b, 8, 0)
		cap50, cap99 := neighbourLatency(b, 8, capN)
		b.ReportMetric(base50, "base-p50-ms")
		b.ReportMetric(base99, "base-p99-ms")
		b.ReportMetric(spin50, "spin-p50-ms")
		b.ReportMetric(spin99, "spin-p99-ms")
		b.ReportMetric(cap50, "capped-p50-ms")
		b.ReportMetric(cap99, "capped-p99-ms")
		b.ReportMetric(spin99/base99, "spin-p99-ratio")
		b.ReportMetric(cap99/base99, "capped-p99-ratio")
	}
}

// neighbourLatency returns the neighbour's p50 and p99 in ms with spinners
// clients hammering the spinning app, under a runtime with MaxAppExecutions
// execCap.
func neighbourLatency(b *testing.B, spinners, execCap int) (float64, float64) {
	b.Helper()
	e := newEnv(b, Options{MaxAppExecutions: execCap})
	h := fixture(b, "hello")
	n := app("neighbour", deploy.ExecutorWAGI, h, "/...")
	n.Hosts = []string{"n.test"}
	e.deploy(b, n, h)
	loop := fixture(b, "loop")
	s := app("spin", deploy.ExecutorWAGI, loop, "/...")
	s.Hosts = []string{"spin.test"}
	s.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(time.Second)}
	e.deploy(b, s, loop)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range spinners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
				req.Host = "spin.test"
				if resp, err := e.srv.Client().Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	if spinners > 0 {
		time.Sleep(200 * time.Millisecond) // the spinners are running
	}
	for range 10 { // warm
		e.do(b, http.MethodGet, "n.test", "/", nil)
	}
	lat := make([]time.Duration, 0, 100)
	for range 100 {
		t0 := time.Now()
		if code, _, _ := e.do(b, http.MethodGet, "n.test", "/", nil); code != 200 {
			b.Fatalf("neighbour: status %d", code)
		}
		lat = append(lat, time.Since(t0))
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
}
