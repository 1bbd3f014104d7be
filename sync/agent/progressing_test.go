package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// TestAgentProgressingTarget: against a target whose Puts are accepted and
// roll out asynchronously, a round that deploys records the apps as
// "progressing" (not failed, not yet deployed), the round succeeds, and the
// next round that sees them ready sends nothing again.
func TestAgentProgressingTarget(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 100 * time.Millisecond })
	h.mem.Async = true
	h.start()
	first := h.waitRound(0, func(r history.Round) bool { return true })
	if first.Result != history.RoundSucceeded {
		t.Fatalf("first round = %s (%s)", first.Result, first.Error)
	}
	for _, app := range []string{"a", "b"} {
		got := roundApps(first, app)
		if len(got) != 1 || got[0].Result != "progressing" || got[0].Digest != appDigest(app, "v1") {
			t.Fatalf("first round's records for %s: %+v, want one progressing at v1", app, got)
		}
	}
	var apply string
	for _, s := range first.Steps {
		if s.Step == history.StepApply {
			apply = s.Message
		}
	}
	if !strings.Contains(apply, "2 progressing") {
		t.Fatalf("apply step says %q, want it to count 2 progressing", apply)
	}
	puts, _, _, _ := h.mem.Counts()
	for _, app := range []string{"a", "b"} {
		h.mem.Settle(app)
	}
	later := h.waitRound(first.ID, func(r history.Round) bool {
		for _, app := range []string{"a", "b"} {
			if got := roundApps(r, app); len(got) != 1 || got[0].Result != "unchanged" {
				return false
			}
		}
		return true
	})
	if later.Result != history.RoundSucceeded {
		t.Fatalf("round after the rollout = %s (%s)", later.Result, later.Error)
	}
	if n, _, _, _ := h.mem.Counts(); n != puts {
		t.Fatalf("%d Puts after the rollout finished, want none (%d before)", n-puts, puts)
	}
}
