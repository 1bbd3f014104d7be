package core

import "github.com/prometheus/client_golang/prometheus"

// coreMetrics are the core's own collectors. Their names keep the
// ferry_host_control_ prefix of the deploys: they were the control API's
// before the core was its own package, and dashboards use them.
type coreMetrics struct {
	healthy         *prometheus.GaugeVec
	probeFailures   *prometheus.CounterVec
	healthRollbacks *prometheus.CounterVec
	deploys         *prometheus.CounterVec
	deploySeconds   prometheus.Histogram
}

func newCoreMetrics() *coreMetrics {
	return &coreMetrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_host_app_healthy",
			Help: "1 while the serving version's component passes its health probes after deploy, 0 once it failed failure_threshold in a row.",
		}, []string{"app", "component"}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_health_probe_failures_total",
			Help: "Failed health probes after deploy, by app.",
		}, []string{"app"}),
		healthRollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_health_rollbacks_total",
			Help: "Rollbacks the host made by itself because a version turned unhealthy within its bake.",
		}, []string{"app"}),
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_control_puts_total",
			Help: "App PUTs by result (ok, or the error code).",
		}, []string{"result"}),
		deploySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ferry_host_control_put_duration_seconds",
			Help:    "Time to verify, pull, deploy and persist an app.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
	}
}

func (m *coreMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.deploys, m.deploySeconds, m.healthy, m.probeFailures, m.healthRollbacks} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
