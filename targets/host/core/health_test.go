package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
)

func TestPolicyOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *deploy.Health
		want core.HealthPolicy
		ok   bool
	}{
		{"nil", nil, core.HealthPolicy{}, false},
		{"no path", &deploy.Health{Interval: deploy.Duration(time.Second)}, core.HealthPolicy{}, false},
		{"defaults", &deploy.Health{Path: "/h"}, core.HealthPolicy{Interval: 10 * time.Second, Timeout: 5 * time.Second, FailureThreshold: 3}, true},
		{"set", &deploy.Health{Path: "/h", Interval: deploy.Duration(time.Second), Timeout: deploy.Duration(time.Millisecond),
			FailureThreshold: 1, Bake: deploy.Duration(time.Minute)},
			core.HealthPolicy{Interval: time.Second, Timeout: time.Millisecond, FailureThreshold: 1, Bake: time.Minute}, true},
		{"negative bake", &deploy.Health{Path: "/h", Bake: deploy.Duration(-time.Second)},
			core.HealthPolicy{Interval: 10 * time.Second, Timeout: 5 * time.Second, FailureThreshold: 3}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := core.PolicyOf(tc.h)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("PolicyOf = %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestProbeDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := core.HealthPolicy{Interval: 10 * time.Second}
	for _, tc := range []struct {
		name string
		last time.Time
		now  time.Time
		want bool
	}{
		{"never probed", time.Time{}, t0, true},
		{"just probed", t0, t0, false},
		{"before interval", t0, t0.Add(9999 * time.Millisecond), false},
		{"at interval", t0, t0.Add(10 * time.Second), true},
		{"long after", t0, t0.Add(time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := core.ProbeDue(p, api.HealthState{LastProbe: tc.last}, tc.now); got != tc.want {
				t.Fatalf("ProbeDue = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDecideHealth is the prober's whole decision, by table: probe results
// and clock values in, state and action out.
func TestDecideHealth(t *testing.T) {
	deployed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return deployed.Add(d) }
	baked := core.HealthPolicy{Interval: time.Second, Timeout: time.Second, FailureThreshold: 2, Bake: time.Minute}
	noBake := baked
	noBake.Bake = 0
	one := api.HealthState{Healthy: true, ConsecutiveFailures: 1, LastProbe: at(time.Second), LastError: "GET /h answered 500"}
	for _, tc := range []struct {
		name      string
		pol       core.HealthPolicy
		st        api.HealthState
		when      time.Time
		ok, canRB bool
		want      api.HealthState
		action    core.HealthAction
		reasonHas string
	}{
		{"pass keeps healthy", baked, core.NewHealthState(), at(time.Second), true, true,
			api.HealthState{Healthy: true, LastProbe: at(time.Second)}, core.HealthKeep, ""},
		{"first failure under threshold", baked, core.NewHealthState(), at(time.Second), false, true,
			one, core.HealthKeep, ""},
		{"pass resets failures", baked, one, at(2 * time.Second), true, true,
			api.HealthState{Healthy: true, LastProbe: at(2 * time.Second)}, core.HealthKeep, ""},
		{"threshold within bake rolls back", baked, one, at(2 * time.Second), false, true,
			api.HealthState{Healthy: false, ConsecutiveFailures: 2, LastProbe: at(2 * time.Second), LastError: "GET /h answered 500"},
			core.HealthRollBack, "2 health probes in a row failed"},
		{"threshold exactly at bake rolls back", baked, one, at(time.Minute), false, true,
			api.HealthState{Healthy: false, ConsecutiveFailures: 2, LastProbe: at(time.Minute), LastError: "GET /h answered 500"},
			core.HealthRollBack, "within its bake of 1m0s"},
		{"threshold after bake only marks unhealthy", baked, one, at(time.Minute + time.Millisecond), false, true,
			api.HealthState{Healthy: false, ConsecutiveFailures: 2, LastProbe: at(time.Minute + time.Millisecond), LastError: "GET /h answered 500"},
			core.HealthKeep, ""},
		{"no bake never rolls back", noBake, one, at(2 * time.Second), false, true,
			api.HealthState{Healthy: false, ConsecutiveFailures: 2, LastProbe: at(2 * time.Second), LastError: "GET /h answered 500"},
			core.HealthKeep, ""},
		{"nothing older to roll back to", baked, one, at(2 * time.Second), false, false,
			api.HealthState{Healthy: false, ConsecutiveFailures: 2, LastProbe: at(2 * time.Second), LastError: "GET /h answered 500"},
			core.HealthKeep, ""},
		{"already unhealthy past threshold within bake rolls back", baked,
			api.HealthState{Healthy: false, ConsecutiveFailures: 5, LastProbe: at(5 * time.Second)}, at(6 * time.Second), false, true,
			api.HealthState{Healthy: false, ConsecutiveFailures: 6, LastProbe: at(6 * time.Second), LastError: "GET /h answered 500"},
			core.HealthRollBack, "6 health probes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, action, reason := core.DecideHealth(core.HealthInput{Policy: tc.pol, State: tc.st, DeployedAt: deployed,
				At: tc.when, OK: tc.ok, Message: "GET /h answered 500", CanRollBack: tc.canRB})
			if tc.ok {
				tc.want.LastError = ""
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("state (-want +got):\n%s", d)
			}
			if action != tc.action {
				t.Errorf("action = %s, want %s", action, tc.action)
			}
			if tc.reasonHas != "" && !strings.Contains(reason, tc.reasonHas) || tc.reasonHas == "" && reason != "" {
				t.Errorf("reason = %q, want one containing %q", reason, tc.reasonHas)
			}
		})
	}
}
