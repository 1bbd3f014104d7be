package fleet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummary(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"starting", Decision{Outcome: OutcomeRunning, Wave: 0, Waves: 3,
			Start: []string{"a", "b", "c", "d", "e", "f", "g"}, Deferred: 4,
			Gate:      Gate{Devices: 11, Pending: 4, Need: 0.95},
			NextCheck: t0.Add(time.Minute)},
			"running, wave 1/3: 0/11 healthy (0%, need 95%), 4 not started\n" +
				"start 7: a, b, c, d, e, +2 more\n4 waiting for the rate limit\nnext check by 2026-01-02T03:05:00Z"},
		{"soaking", Decision{Outcome: OutcomeSoaking, Wave: 1, Waves: 3, Passed: []int{0},
			Healthy: []string{"x"}, Failed: []Failure{{"y", ReasonTimeout}},
			Gate: Gate{Wave: 1, Devices: 8, Healthy: 7, Failed: 1, Need: 0.875, Since: t0, Soak: 5 * time.Minute}},
			"soaking, wave 2/3: 7/8 healthy (87.5%, need 87.5%), gate held since 2026-01-02T03:04:00Z (soak 5m0s)\n" +
				"wave 1 passed its health gate\nhealthy 1: x\nfailed 1: y (timeout)"},
		{"stalled", Decision{Outcome: OutcomeRunning, Wave: 0, Waves: 2,
			Gate: Gate{Devices: 4, Healthy: 2, Failed: 2, Need: 0.9}},
			"running, wave 1/2: 2/4 healthy (50%, need 90%), stalled: 2 failed, the gate can no longer hold"},
		{"aborted", Decision{Outcome: OutcomeAborted, Reason: "3 of 10 reported devices failed", Wave: 1, Waves: 2,
			RollBack: []string{"a", "b"}, Gate: Gate{Wave: 1, Devices: 2, Failed: 2, Need: 1}},
			"aborted, wave 2/2: 0/2 healthy (0%, need 100%)\naborted: 3 of 10 reported devices failed\nroll back 2: a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.d.String()); diff != "" {
				t.Errorf("String (-want +got):\n%s", diff)
			}
		})
	}

	st := mustState(t, "", digB)
	st.App, st.Target, st.Supersedes = "shop", "edge", digC
	st.Devices = map[string]Progress{"a": {Status: StatusHealthy}, "b": {Status: StatusFailed}, "c": {Status: StatusUpdating}}
	want := "shop on edge: (none) -> bbbbbbbbbbbb, running in wave 1 since 2026-01-02T03:04:00Z (supersedes cccccccccccc)\n" +
		"devices: 1 healthy, 1 updating, 1 failed, 0 rolled back"
	if diff := cmp.Diff(want, st.Summary()); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	if got := Short("sha256:0123456789abcdef"); got != "0123456789ab" {
		t.Errorf("Short = %q", got)
	}
	if got := Short("v1"); got != "v1" {
		t.Errorf("Short(v1) = %q", got)
	}
}
