package host

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/deploy"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Options{Metrics: reg})
	h := fixture(t, "hello")
	g := goGuest(t, "examples/hello-go")
	e.deploy(t, app("wagi", deploy.ExecutorWAGI, h, "/w"), h)
	e.deploy(t, app("go", deploy.ExecutorReactor, g, "/g"), g)
	e.deploy(t, app("wagi2", deploy.ExecutorWAGI, h, "/w2"), h) // same digest: a cache hit
	for range 3 {
		e.get(t, "/w")
		e.get(t, "/g")
	}
	e.get(t, "/nothing")

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
			}
			if v > 0 {
				got[mf.GetName()+"{"+labels+"}"] = true
			}
		}
	}
	for _, k := range []string{
		"ferry_host_requests_total{app=go,code=2xx,component=main,}",
		"ferry_host_requests_total{app=wagi,code=2xx,component=main,}",
		"ferry_host_request_duration_seconds{app=go,}",
		"ferry_host_compile_cache_hits_total{}",
		"ferry_host_compiles_total{}",
		"ferry_host_instances{app=go,component=main,}",
		"ferry_host_memory_bytes{app=go,}",
	} {
		if !got[k] {
			t.Errorf("metric %s missing or zero; have %v", k, got)
		}
	}
}
