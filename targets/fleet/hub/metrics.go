package hub

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// hubMetrics are the fleet's Prometheus metrics: gauges read from the
// device inventory and the rollouts at each scrape, and a counter of
// rollout events.
type hubMetrics struct {
	h        *Hub
	events   *prometheus.CounterVec
	devices  *prometheus.Desc
	rdevices *prometheus.Desc
	wave     *prometheus.Desc
	outcome  *prometheus.Desc
	paused   *prometheus.Desc
}

func newHubMetrics(h *Hub) *hubMetrics {
	m := &hubMetrics{
		h: h,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_fleet_rollout_events_total",
			Help: "Fleet rollouts started, completed and aborted, by kind.",
		}, []string{"kind"}),
		devices: prometheus.NewDesc("ferry_fleet_devices",
			"Enrolled devices by status: reporting (has sent a status report), silent (never has), revoked.", []string{"status"}, nil),
		rdevices: prometheus.NewDesc("ferry_fleet_rollout_devices",
			"Devices a rollout started, by status (updating, healthy, failed, rolled_back).", []string{"target", "app", "status"}, nil),
		wave: prometheus.NewDesc("ferry_fleet_rollout_wave",
			"The wave a rollout is in, from 1.", []string{"target", "app"}, nil),
		outcome: prometheus.NewDesc("ferry_fleet_rollout_outcome",
			"1 for a rollout's outcome (running, soaking, completed, aborted), 0 for the others.", []string{"target", "app", "outcome"}, nil),
		paused: prometheus.NewDesc("ferry_fleet_rollout_paused",
			"1 while a person paused the rollout.", []string{"target", "app"}, nil),
	}
	for _, k := range []controller.EventKind{controller.EventStarted, controller.EventCompleted, controller.EventAborted} {
		m.events.WithLabelValues(string(k))
	}
	return m
}

// Collector returns the hub's Prometheus collector: ferry_fleet_devices,
// ferry_fleet_rollout_{devices,wave,outcome,paused} (read at each
// scrape) and ferry_fleet_rollout_events_total. Register it once.
func (h *Hub) Collector() prometheus.Collector { return h.met }

// Describe implements prometheus.Collector.
func (m *hubMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.events.Describe(ch)
	for _, d := range []*prometheus.Desc{m.devices, m.rdevices, m.wave, m.outcome, m.paused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *hubMetrics) Collect(ch chan<- prometheus.Metric) {
	m.events.Collect(ch)
	var reporting, silent, revoked int
	m.h.srv.EachDevice(func(d server.Device) {
		switch {
		case !d.Revoked.IsZero():
			revoked++
		case d.LastReport.IsZero():
			silent++
		default:
			reporting++
		}
	})
	for s, n := range map[string]int{"reporting": reporting, "silent": silent, "revoked": revoked} {
		ch <- prometheus.MustNewConstMetric(m.devices, prometheus.GaugeValue, float64(n), s)
	}
	rs, _ := m.h.Rollouts("")
	for _, r := range rs {
		c := r.State.Counts()
		for s, n := range map[string]int{"updating": c.Updating, "healthy": c.Healthy, "failed": c.Failed, "rolled_back": c.RolledBack} {
			ch <- prometheus.MustNewConstMetric(m.rdevices, prometheus.GaugeValue, float64(n), r.Target, r.App, s)
		}
		ch <- prometheus.MustNewConstMetric(m.wave, prometheus.GaugeValue, float64(r.State.Wave+1), r.Target, r.App)
		for _, o := range []fleet.Outcome{fleet.OutcomeRunning, fleet.OutcomeSoaking, fleet.OutcomeCompleted, fleet.OutcomeAborted} {
			ch <- prometheus.MustNewConstMetric(m.outcome, prometheus.GaugeValue, b2f(r.State.Outcome == o), r.Target, r.App, string(o))
		}
		ch <- prometheus.MustNewConstMetric(m.paused, prometheus.GaugeValue, b2f(r.Paused), r.Target, r.App)
	}
}

// onEvent counts a controller's event and passes it to Options.OnEvent.
func (m *hubMetrics) onEvent(e controller.Event) {
	m.events.WithLabelValues(string(e.Kind)).Inc()
	if f := m.h.opts.OnEvent; f != nil {
		f(e)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
