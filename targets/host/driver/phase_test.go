package driver

import (
	"testing"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// TestPhaseOf: the phase the driver reports for each state a ferry-host
// reports an app in. A host never reports progressing.
func TestPhaseOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		app  api.AppInfo
		want targets.Phase
	}{
		{"serving and healthy", api.AppInfo{Status: api.StatusServing, Healthy: true}, targets.PhaseReady},
		{"serving, probes failing", api.AppInfo{Status: api.StatusServing, Health: api.HealthUnhealthy}, targets.PhaseDegraded},
		{"failed after a restart", api.AppInfo{Status: api.StatusFailed, Message: "pull: connection refused"}, targets.PhaseFailed},
		{"failed, even if marked healthy", api.AppInfo{Status: api.StatusFailed, Healthy: true}, targets.PhaseFailed},
		{"unknown status word", api.AppInfo{Status: "restoring", Healthy: true}, targets.PhaseDegraded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PhaseOf(tc.app); got != tc.want {
				t.Errorf("PhaseOf(%+v) = %q, want %q", tc.app, got, tc.want)
			}
		})
	}
}

// TestWorsePhase: a group's app is only as ready as its least ready host.
func TestWorsePhase(t *testing.T) {
	r, p, d, f := targets.PhaseReady, targets.PhaseProgressing, targets.PhaseDegraded, targets.PhaseFailed
	for _, tc := range []struct{ a, b, want targets.Phase }{
		{"", r, r}, {r, r, r}, {r, d, d}, {d, r, d}, {f, d, f}, {d, f, f}, {p, r, p}, {r, p, p}, {p, f, f},
	} {
		if got := worsePhase(tc.a, tc.b); got != tc.want {
			t.Errorf("worsePhase(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}
