package host

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/deploy"
)

// TestMemoryBudget: twelve concurrent requests to a guest that holds 7.5 MiB
// of its 8 MiB limit for 200 ms, under a 32 MiB budget: at most four run at
// once (the reservation, sampled all along, never passes the budget, nor
// does the process's RSS grow by more than the budget and some slack), the
// others wait up to MemoryWait and then get 503 with the documented body,
// and the metrics count them.
func TestMemoryBudget(t *testing.T) {
	const budget = 32 << 20
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{MemoryBudget: budget, MemoryWait: 100 * time.Millisecond, Metrics: reg})
	w := fixture(t, "memhog")
	a := app("memhog", deploy.ExecutorWAGI, w, "/...")
	a.Components[0].Limits = deploy.Limits{MemoryBytes: 8 << 20, Timeout: deploy.Duration(20 * time.Second)}
	e.deploy(t, a, w)
	rss0 := rssBytes()

	var maxReserved, maxRSS atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := e.rt.budget.reserved(); n > maxReserved.Load() {
				maxReserved.Store(n)
			}
			if n := rssBytes(); n > maxRSS.Load() {
				maxRSS.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.srv.Client().Get(e.srv.URL + "/")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
			switch resp.StatusCode {
			case 200:
				if string(b) != "held\n" {
					t.Errorf("200 body %q", b)
				}
			case 503:
				if string(b) != budgetBody {
					t.Errorf("503 body %q, want %q", b, budgetBody)
				}
			default:
				t.Errorf("status %d %q", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("statuses %v; max reserved %d MiB; RSS %d -> max %d MiB", codes, maxReserved.Load()>>20, rss0>>20, maxRSS.Load()>>20)
	if codes[200] == 0 || codes[503] == 0 {
		t.Errorf("statuses %v: want some 200s and some 503s", codes)
	}
	if n := maxReserved.Load(); n > budget {
		t.Errorf("reserved %d bytes, over the %d budget", n, budget)
	}
	if grew := maxRSS.Load() - rss0; grew > budget+32<<20 {
		t.Errorf("RSS grew by %d MiB with a %d MiB budget", grew>>20, budget>>20)
	}
	if got := gathered(t, reg, "ferry_host_memory_budget_refused_total"); int(got) != codes[503] {
		t.Errorf("ferry_host_memory_budget_refused_total %v, want %d", got, codes[503])
	}
	if got := gathered(t, reg, "ferry_host_memory_reserved_bytes"); got != 0 {
		t.Errorf("reserved after the requests: %v bytes", got)
	}
	if !strings.Contains(e.logs.String(), "request refused: host memory budget full") {
		t.Error("no log line for the refusals")
	}
}

// gathered returns the value of an unlabelled counter or gauge in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
