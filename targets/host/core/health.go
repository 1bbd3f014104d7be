package core

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// Defaults of a component's health block (spec/LANGUAGE.md, "health").
const (
	// DefaultHealthInterval is the time between two probes of a serving
	// version: 10 s.
	DefaultHealthInterval = 10 * time.Second
	// DefaultProbeTimeout bounds one probe after deploy: 5 s.
	DefaultProbeTimeout = 5 * time.Second
	// DefaultFailureThreshold is how many probes in a row must fail before
	// a version counts as unhealthy: 3.
	DefaultFailureThreshold = 3
)

// HealthPolicy is one component's probe policy after its deploy, with the
// defaults filled in. A zero Bake means the host never rolls back by
// itself.
type HealthPolicy struct {
	// Interval is the time between probes.
	Interval time.Duration
	// Timeout bounds one probe; a probe that takes longer fails.
	Timeout time.Duration
	// FailureThreshold is how many consecutive failed probes make the
	// version unhealthy.
	FailureThreshold int
	// Bake is how long after its deploy a version that turns unhealthy is
	// rolled back by the host to its previous version.
	Bake time.Duration
}

// PolicyOf returns the policy of health block h with the defaults filled
// in; ok is false when h declares no probe (nil or no path).
func PolicyOf(h *deploy.Health) (p HealthPolicy, ok bool) {
	if h == nil || h.Path == "" {
		return HealthPolicy{}, false
	}
	p = HealthPolicy{Interval: h.Interval.Std(), Timeout: h.Timeout.Std(), FailureThreshold: h.FailureThreshold, Bake: h.Bake.Std()}
	if p.Interval <= 0 {
		p.Interval = DefaultHealthInterval
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultProbeTimeout
	}
	if p.FailureThreshold <= 0 {
		p.FailureThreshold = DefaultFailureThreshold
	}
	if p.Bake < 0 {
		p.Bake = 0
	}
	return p, true
}

// NewHealthState is the state of a version whose deploy probe passed.
func NewHealthState() api.HealthState { return api.HealthState{Healthy: true} }

// ProbeDue reports whether a probe of a component in state s with policy
// p is due at now.
func ProbeDue(p HealthPolicy, s api.HealthState, now time.Time) bool {
	return s.LastProbe.IsZero() || !now.Before(s.LastProbe.Add(p.Interval))
}

// HealthAction is what the prober does after a probe.
type HealthAction string

// HealthAction values.
const (
	// HealthKeep: nothing changes but the recorded state.
	HealthKeep HealthAction = "keep"
	// HealthRollBack: switch the app back to its previous version.
	HealthRollBack HealthAction = "rollback"
)

// HealthInput is everything DecideHealth looks at: no clock, no I/O.
type HealthInput struct {
	// Policy is the component's probe policy.
	Policy HealthPolicy
	// State is the component's state before this probe.
	State api.HealthState
	// DeployedAt is when the serving version was deployed.
	DeployedAt time.Time
	// At is when the probe ran.
	At time.Time
	// OK is whether the probe answered 2xx within its timeout.
	OK bool
	// Message says why it failed ("GET /healthz answered 500").
	Message string
	// CanRollBack is true when the host keeps an older, different
	// previous version and the serving version was not itself reached by a
	// rollback (so that two bad versions never flip between each other).
	CanRollBack bool
}

// DecideHealth folds one probe result into the component's state and says
// whether the version must be rolled back, and why. A version is rolled
// back when the probe makes it unhealthy (FailureThreshold failures in a
// row) no later than Bake after its deploy, and it can be.
func DecideHealth(in HealthInput) (api.HealthState, HealthAction, string) {
	s := in.State
	s.LastProbe = in.At
	if in.OK {
		s.Healthy, s.LastError, s.ConsecutiveFailures = true, "", 0
		return s, HealthKeep, ""
	}
	s.ConsecutiveFailures++
	s.LastError = in.Message
	if s.ConsecutiveFailures < in.Policy.FailureThreshold {
		return s, HealthKeep, ""
	}
	s.Healthy = false
	since := in.At.Sub(in.DeployedAt)
	if in.Policy.Bake <= 0 || since > in.Policy.Bake || !in.CanRollBack {
		return s, HealthKeep, ""
	}
	return s, HealthRollBack, fmt.Sprintf("unhealthy %s after its deploy, within its bake of %s: %d health probes in a row failed, the last: %s",
		since.Round(time.Millisecond), in.Policy.Bake, s.ConsecutiveFailures, in.Message)
}

// appHealth is what the prober keeps per app: the state of each component
// of the generation it probes.
type appHealth struct {
	gen   uint64
	comps map[string]api.HealthState
}

// DefaultHealthTick is how often RunHealth looks for due probes: 1 s (or
// the shortest interval of a serving component, when shorter).
const DefaultHealthTick = time.Second

// RunHealth probes every serving app's components that declare a health
// path, each on its own interval, until ctx ends; it returns nil then. A
// version that turns unhealthy within its bake after its deploy is rolled
// back to the host's older previous version (see DecideHealth), and
// Get and List report it in AppInfo.RolledBack. Call it once per Core.
func (s *Core) RunHealth(ctx context.Context) error {
	for {
		wait := s.healthRound(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// healthRound runs the probes that are due and returns how long to wait
// for the next round.
func (s *Core) healthRound(ctx context.Context) time.Duration {
	tick := DefaultHealthTick
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.apps))
	s.mu.Unlock()
	for _, name := range names {
		if ctx.Err() != nil {
			return tick
		}
		st, err := s.rt.App(name)
		if err != nil {
			continue
		}
		for _, c := range st.Current.App.Components {
			if p, ok := PolicyOf(c.Health); ok && p.Interval < tick {
				tick = p.Interval
			}
		}
		s.probeApp(ctx, name, st)
	}
	return tick
}

// probeApp probes the due components of app name's serving version and
// acts on the decision.
func (s *Core) probeApp(ctx context.Context, name string, st host.AppStatus) {
	gen := st.Current.Generation
	s.hmu.Lock()
	h := s.health[name]
	if h == nil || h.gen != gen {
		h = &appHealth{gen: gen, comps: map[string]api.HealthState{}}
		s.health[name] = h
	}
	s.hmu.Unlock()
	for _, c := range st.Current.App.Components {
		pol, ok := PolicyOf(c.Health)
		if !ok {
			continue
		}
		s.hmu.Lock()
		cur, seen := h.comps[c.Name]
		s.hmu.Unlock()
		if !seen {
			cur = NewHealthState()
		}
		now := time.Now()
		if !ProbeDue(pol, cur, now) {
			continue
		}
		pgen, err := s.rt.Probe(ctx, name, c.Name, pol.Timeout)
		if pgen != gen || ctx.Err() != nil {
			return // a new version arrived meanwhile; it starts afresh
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		s.mu.Lock()
		e := s.apps[name]
		s.mu.Unlock()
		if e == nil || e.failed != "" || e.cur == nil {
			return
		}
		canRB := e.prev != nil && e.prev.Digest != e.cur.Digest && e.prev.DeployedAt.Before(e.cur.DeployedAt)
		next, action, reason := DecideHealth(HealthInput{Policy: pol, State: cur, DeployedAt: e.cur.DeployedAt,
			At: time.Now(), OK: err == nil, Message: msg, CanRollBack: canRB})
		s.hmu.Lock()
		h.comps[c.Name] = next
		s.hmu.Unlock()
		s.metrics.healthy.WithLabelValues(name, c.Name).Set(boolFloat(next.Healthy))
		if err != nil {
			s.metrics.probeFailures.WithLabelValues(name).Inc()
		}
		if action == HealthRollBack {
			s.healthRollBack(ctx, name, e.cur.Digest, fmt.Sprintf("component %s %s", c.Name, reason))
			return
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// healthRollBack rolls app name back from digest from, unless something
// else changed it first, and records why (in memory and in the state
// directory, so a restarted host still reports it).
func (s *Core) healthRollBack(ctx context.Context, name, from, reason string) {
	_, rb, err := s.rollBack(ctx, name, from, reason)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "health rollback failed", slog.String("app", name),
			slog.String("from", from), slog.String("error", err.Error()))
		return
	}
	if rb == nil {
		return
	}
	s.metrics.healthRollbacks.WithLabelValues(name).Inc()
	s.log.LogAttrs(ctx, slog.LevelWarn, "app rolled back by its health probe", slog.String("app", name),
		slog.String("from", from), slog.String("to", rb.To), slog.String("reason", reason))
}

// rollbackToState is rb as the state directory keeps it; nil for nil.
func rollbackToState(rb *api.HostRollback) *state.Rollback {
	if rb == nil {
		return nil
	}
	return &state.Rollback{From: rb.From, FromRef: rb.FromRef, To: rb.To, Reason: rb.Reason, At: rb.At}
}

// healthOf returns the prober's view of app name's serving version
// (generation gen): its components' states and whether all are healthy.
func (s *Core) healthOf(name string, gen uint64, comps []deploy.Component) ([]api.ComponentHealth, bool) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	h := s.health[name]
	ok := true
	var out []api.ComponentHealth
	for _, c := range comps {
		if _, has := PolicyOf(c.Health); !has {
			continue
		}
		st := NewHealthState()
		if h != nil && h.gen == gen {
			if x, seen := h.comps[c.Name]; seen {
				st = x
			}
		}
		ok = ok && st.Healthy
		out = append(out, api.ComponentHealth{Component: c.Name, Path: c.Health.Path, HealthState: st})
	}
	return out, ok
}

// forgetHealth drops the prober's state and gauges of a deleted app.
func (s *Core) forgetHealth(name string) {
	s.hmu.Lock()
	delete(s.health, name)
	s.hmu.Unlock()
	s.metrics.healthy.DeletePartialMatch(prometheus.Labels{"app": name})
}
