package sync

import (
	"testing"
)

func TestAgentWebhookPush(t *testing.T) {
	h := newHarness(t, nil) // Interval 1h: only the webhook can wake it
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	first := h.waitRound(0, func(r Round) bool { return true })
	if first.Trigger != "start" || first.Result != RoundSucceeded {
		t.Fatalf("first round = %s %s (%s)", first.Trigger, first.Result, first.Error)
	}

	sha := h.push("a v2", "v2", "v1")
	if code := h.githubHook("gh-secret", "refs/heads/main", sha); code != 202 {
		t.Fatalf("webhook status %d, want 202", code)
	}
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	r := h.waitRound(first.ID, func(r Round) bool { return r.Commit == sha })
	if r.Trigger != "webhook:github" || r.Result != RoundSucceeded {
		t.Fatalf("round = %s %s (%s)", r.Trigger, r.Result, r.Error)
	}
	if got := roundApps(r, "a"); len(got) != 1 || got[0].Action != "update" || got[0].Result != "applied" || got[0].Digest != appDigest("a", "v2") {
		t.Fatalf("round records for a: %+v", got)
	}
	st := h.agent.Status()
	if st.LastSuccessfulCommit != sha || st.DesiredCommit != sha || st.FetchedCommit != sha {
		t.Fatalf("status commits: %+v", st)
	}
}
