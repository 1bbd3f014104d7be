package agent

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// agentMetrics are the agent's Prometheus collectors, registered in the
// agent's own registry and, optionally, the caller's.
type agentMetrics struct {
	reg          *prometheus.Registry
	gatherer     prometheus.Gatherer
	rounds       *prometheus.CounterVec
	stepDuration *prometheus.HistogramVec
	errors       *prometheus.CounterVec
	appFailures  prometheus.Counter
	lastSuccess  prometheus.Gauge
	lastCommit   *prometheus.GaugeVec
}

func newAgentMetrics(extra prometheus.Registerer) (*agentMetrics, error) {
	m := &agentMetrics{
		reg: prometheus.NewRegistry(),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_agent_rounds_total", Help: "Agent rounds by result (succeeded, partial, failed, interrupted).",
		}, []string{"result"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_agent_step_duration_seconds", Help: "Duration of each round step (fetch, load, build, push, sign, plan, apply).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"step"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_agent_errors_total", Help: "Failed round steps, by step.",
		}, []string{"step"}),
		appFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_agent_app_failures_total", Help: "App changes that failed on a target.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_agent_last_success_timestamp_seconds", Help: "When the last fully successful round finished (Unix time).",
		}),
		lastCommit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_agent_last_success_commit_info", Help: "Always 1; the label is the commit of the last fully successful round.",
		}, []string{"commit"}),
	}
	cs := []prometheus.Collector{m.rounds, m.stepDuration, m.errors, m.appFailures, m.lastSuccess, m.lastCommit}
	for _, c := range cs {
		m.reg.MustRegister(c) // a fresh registry: cannot collide
	}
	m.gatherer = m.reg
	if extra != nil {
		for _, c := range cs {
			if err := extra.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, fmt.Errorf("%w: metrics: another agent's collectors are already registered: %w", ErrAgentOptions, err)
				}
				return nil, fmt.Errorf("%w: metrics: %w", ErrAgentOptions, err)
			}
		}
		if g, ok := extra.(prometheus.Gatherer); ok {
			m.gatherer = g
		}
	}
	return m, nil
}
