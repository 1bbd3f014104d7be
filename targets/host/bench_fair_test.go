package host

import (
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// BenchmarkNeighbourUnderSpin measures a tiny neighbour app's latency (the
// hello WAT guest, neighbourRequests sequential requests) alone, then while 8 clients keep
// an app of spinning guests (loop, 1 s deadline) busy: with the CPU
// scheduler (the default, sched.go: CPUSlots GOMAXPROCS-1), without it
// (Options.CPUSlots -1), with every P open to guests (CPUSlots
// GOMAXPROCS, "allslots"), and with the scheduler but no burst grants
// ("noburst": every execution queues for a slot).
// It reports p50/p99 of each and the p99 ratios to the baseline, which is
// measured in the same run (goal: within 2x with the scheduler). Run with
// -benchtime 1x.
func BenchmarkNeighbourUnderSpin(b *testing.B) {
	for range b.N {
		reqs := neighbourRequests(b)
		base50, base99 := neighbourLatency(b, 0, Options{}, nil, reqs)
		sched50, sched99 := neighbourLatency(b, 8, Options{}, nil, reqs)
		// Without the scheduler a request takes ~0.15-0.3 s: 100 are
		// enough to show it.
		off50, off99 := neighbourLatency(b, 8, Options{CPUSlots: -1}, nil, 100)
		all50, all99 := neighbourLatency(b, 8, Options{CPUSlots: runtime.GOMAXPROCS(0)}, nil, reqs)
		nob50, nob99 := neighbourLatency(b, 8, Options{}, func(s *cpuSched) { s.burstMax = 0 }, reqs)
		b.ReportMetric(nob50, "noburst-p50-ms")
		b.ReportMetric(nob99, "noburst-p99-ms")
		b.ReportMetric(nob99/base99, "noburst-p99-ratio")
		b.ReportMetric(all50, "allslots-p50-ms")
		b.ReportMetric(all99, "allslots-p99-ms")
		b.ReportMetric(all99/base99, "allslots-p99-ratio")
		b.ReportMetric(base50, "base-p50-ms")
		b.ReportMetric(base99, "base-p99-ms")
		b.ReportMetric(sched50, "sched-p50-ms")
		b.ReportMetric(sched99, "sched-p99-ms")
		b.ReportMetric(off50, "nosched-p50-ms")
		b.ReportMetric(off99, "nosched-p99-ms")
		b.ReportMetric(sched50/base50, "sched-p50-ratio")
		b.ReportMetric(sched99/base99, "sched-p99-ratio")
		b.ReportMetric(off99/base99, "nosched-p99-ratio")
	}
}

// neighbourRequests is how many sequential requests the neighbour makes
// per configuration: FERRY_BENCH_NEIGHBOUR_REQUESTS, default 2,000. With
// 100, the p99 is the second-largest sample, and one scheduler hiccup of
// the machine moves it by 4x between runs.
func neighbourRequests(b *testing.B) int {
	b.Helper()
	n := 2000
	if v := os.Getenv("FERRY_BENCH_NEIGHBOUR_REQUESTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("FERRY_BENCH_NEIGHBOUR_REQUESTS=%q: want an integer >= 100", v)
		}
	}
	return n
}

// neighbourLatency returns the neighbour's p50 and p99 in ms with spinners
// clients hammering the spinning app, under a runtime with opts (and its
// scheduler changed by tweak, if not nil).
func neighbourLatency(b *testing.B, spinners int, opts Options, tweak func(*cpuSched), reqs int) (float64, float64) {
	b.Helper()
	e := newEnv(b, opts)
	if tweak != nil {
		tweak(e.rt.sched)
	}
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
	lat := make([]time.Duration, 0, reqs)
	for range reqs {
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
