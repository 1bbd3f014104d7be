package targets_test

import (
	"testing"

	"github.com/ferry-wasm/ferry/targets"
)

// TestEffectivePhase: a reported phase wins; without one (an older host)
// the phase follows from Healthy and Status.
func TestEffectivePhase(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    targets.ObservedApp
		want targets.Phase
	}{
		{"reported", targets.ObservedApp{Phase: targets.PhaseProgressing, Healthy: true}, targets.PhaseProgressing},
		{"healthy", targets.ObservedApp{Healthy: true, Status: "serving"}, targets.PhaseReady},
		{"failed", targets.ObservedApp{Status: "failed"}, targets.PhaseFailed},
		{"unhealthy", targets.ObservedApp{Status: "serving"}, targets.PhaseDegraded},
		{"nothing said", targets.ObservedApp{}, targets.PhaseDegraded},
	} {
		if got := tc.o.EffectivePhase(); got != tc.want {
			t.Errorf("%s: EffectivePhase() = %q, want %q", tc.name, got, tc.want)
		}
	}
	if (targets.PutResult{}).Progressing() || !(targets.PutResult{Phase: targets.PhaseProgressing}).Progressing() {
		t.Error("PutResult.Progressing is wrong")
	}
}
