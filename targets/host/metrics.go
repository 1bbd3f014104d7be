package host

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus collectors. They live in the
// Registerer given in Options (no global registry).
type metrics struct {
	r           *Runtime
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	instances   *prometheus.GaugeVec
	compiles    prometheus.Counter
	compileHits prometheus.Counter
	deployGCs   prometheus.Counter
	memDesc     *prometheus.Desc

	budgetMax      prometheus.Gauge
	budgetReserved prometheus.Gauge
	budgetWaits    prometheus.Counter
	budgetRefused  prometheus.Counter
}

var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newMetrics(r *Runtime) *metrics {
	return &metrics{
		r: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_requests_total",
			Help: "Requests served, by app, component and status class.",
		}, []string{"app", "component", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_host_request_duration_seconds",
			Help:    "Request latency inside the runtime, by app.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"app"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_host_instances",
			Help: "Live Wasm instances (pooled reactor instances and running WAGI requests), by app and component.",
		}, []string{"app", "component"}),
		compiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_host_compiles_total",
			Help: "Modules compiled (or loaded from the on-disk compilation cache) at deploy.",
		}),
		compileHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_host_compile_cache_hits_total",
			Help: "Deploys that reused an already compiled module of the same digest.",
		}),
		deployGCs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_host_deploy_gcs_total",
			Help: "Garbage collections run by deploys before returning (the heap was close to its next collection).",
		}),
		budgetMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_host_memory_budget_bytes",
			Help: "The host memory budget of all guest instances together (0: none).",
		}),
		budgetReserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_host_memory_reserved_bytes",
			Help: "Linear memory reserved in the budget by live instances (their memory limits).",
		}),
		budgetWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_host_memory_budget_waits_total",
			Help: "Instances that waited for room in the memory budget.",
		}),
		budgetRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_host_memory_budget_refused_total",
			Help: "Instances refused for the memory budget (their requests answered 503).",
		}),
		memDesc: prometheus.NewDesc("ferry_host_memory_bytes",
			"Linear memory held by an app's pooled instances.", []string{"app"}, nil),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	var err error
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.instances, m.compiles, m.compileHits, m.deployGCs, memCollector{m},
		m.budgetMax, m.budgetReserved, m.budgetWaits, m.budgetRefused} {
		err = errors.Join(err, reg.Register(c))
	}
	return err
}

// component returns the pre-resolved children of one component.
func (m *metrics) component(app, comp string) *compMetrics {
	return &compMetrics{requests: m.requests, app: app, comp: comp,
		latency: m.latency.WithLabelValues(app), instances: m.instances.WithLabelValues(app, comp)}
}

func (m *metrics) forgetApp(app string) {
	l := prometheus.Labels{"app": app}
	m.requests.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.instances.DeletePartialMatch(l)
}

// memCollector reports ferry_host_memory_bytes from the live versions.
type memCollector struct{ m *metrics }

func (c memCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.memDesc }

func (c memCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.m.r
	r.mu.Lock()
	sums := make(map[string]int64, len(r.apps))
	for name, s := range r.apps {
		for _, v := range []*version{s.cur, s.prev} {
			if v == nil {
				continue
			}
			for _, comp := range v.comps {
				sums[name] += comp.mem.Load()
			}
		}
	}
	r.mu.Unlock()
	for app, n := range sums {
		ch <- prometheus.MustNewConstMetric(c.m.memDesc, prometheus.GaugeValue, float64(n), app)
	}
}
