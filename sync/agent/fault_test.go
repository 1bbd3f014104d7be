package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent/gitsource"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
)

func TestAgentGitServerDown(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 100 * time.Millisecond })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	puts, _, _, _ := h.mem.Counts()
	before := h.lastRoundID()

	h.srv.Down()
	r := h.waitRound(before, func(r history.Round) bool { return r.Result == history.RoundFailed })
	if s := r.Step(history.StepFetch); s == nil || s.Status != history.StepFailed {
		t.Fatalf("fetch step = %+v", s)
	}
	h.waitFor("status to say why", func() bool {
		return strings.Contains(strings.Join(h.agent.Status().Errors, " "), gitsource.ErrGitUnreachable.Error())
	})
	// Several failed rounds (with backoff) while down; targets untouched,
	// and drift is still repaired from the last good state.
	h.waitRound(r.ID, func(r history.Round) bool { return r.Result == history.RoundFailed })
	if p, _, _, _ := h.mem.Counts(); p != puts {
		t.Fatalf("puts while git was down: %d → %d", puts, p)
	}
	h.mem.Delete(context.Background(), "b")
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})

	h.srv.Up()
	c2 := h.push("a v2", "v2", "v1")
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Commit == c2 && r.Result == history.RoundSucceeded })
	h.waitFor("errors cleared", func() bool {
		st := h.agent.Status()
		return st.LastRound != nil && st.LastRound.ID >= r.ID && len(st.Errors) == 0
	})
}

func TestAgentBuildFailureBlocksOnlyThatApp(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	c2 := h.push("a broken, b v2", "FAIL", "v2")
	h.githubHook("gh-secret", "refs/heads/main", c2)
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
	r := h.waitRound(0, func(r history.Round) bool { return r.Commit == c2 })
	if r.Result != history.RoundPartial {
		t.Fatalf("round %s, want partial", r.Result)
	}
	recs := roundApps(r, "a")
	if len(recs) == 0 || recs[0].Action != "release" || recs[0].Result != "failed" || !strings.Contains(recs[0].Error, "compile error") {
		t.Fatalf("a records %+v", recs)
	}
	// A newer commit that fixes a deploys it.
	c3 := h.push("a fixed", "v3", "v2")
	h.githubHook("gh-secret", "refs/heads/main", c3)
	h.waitRunning(map[string]string{"a": "v3", "b": "v2"})
}

func TestAgentBuildFailureOfNewAppHoldsIt(t *testing.T) {
	// An app whose first release fails is held: never deleted, never
	// created, the others deploy.
	h := newHarness(t, nil)
	h.mem.Set("a", appDigest("a", "v0"), true, true) // deployed before the agent
	h.work.CommitPush("a broken", specFiles("FAIL", "v1"))
	h.start()
	h.waitRunning(map[string]string{"a": "v0", "b": "v1"})
	h.waitFor("a held in status", func() bool {
		for _, a := range h.agent.Status().Apps {
			if a.Name == "a" && strings.Contains(a.Held, "no previous version") && strings.Contains(a.Error, "compile error") {
				return true
			}
		}
		return false
	})
	if got := h.mem.Digests()["a"]; got != appDigest("a", "v0") {
		t.Fatalf("a runs %s", got)
	}
}

func TestAgentFailedHealthDoesNotBlockNewerCommits(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 50 * time.Millisecond })
	h.mem.Fail[appDigest("a", "v2")] = plantest.FailKeep
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	c2 := h.push("a v2 (unhealthy), b v2", "v2", "v2")
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
	r := h.waitRound(0, func(r history.Round) bool { return r.Commit == c2 })
	if r.Result != history.RoundPartial || !strings.Contains(r.Error, "probe failed") {
		t.Fatalf("round %s %q", r.Result, r.Error)
	}
	// The failed version is not retried every round: with a 50ms interval
	// and backoff from there, a few rounds hold it.
	h.waitRound(r.ID, func(r history.Round) bool {
		recs := roundApps(r, "a")
		return len(recs) == 1 && recs[0].Result == "held"
	})
	c3 := h.push("a v3", "v3", "v2")
	h.waitRunning(map[string]string{"a": "v3", "b": "v2"})
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Commit == c3 })
	if r.Result != history.RoundSucceeded {
		t.Fatalf("round %s: %s", r.Result, r.Error)
	}
}

func TestAgentInterruptedMidApply(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	entered := make(chan struct{}, 4)
	h.mem.Mu.Lock()
	h.mem.PutDelay = time.Hour
	h.mem.OnPut = func(string) { entered <- struct{}{} }
	h.mem.Mu.Unlock()
	c2 := h.push("both v2", "v2", "v2")
	h.githubHook("gh-secret", "refs/heads/main", c2)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no Put started")
	}
	h.stop() // cancels mid-apply
	h.mem.Mu.Lock()
	h.mem.PutDelay, h.mem.OnPut = 0, nil
	h.mem.Mu.Unlock()

	h.newAgent()
	rs, err := h.agent.Rounds(10)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Result != history.RoundInterrupted || rs[0].Commit != c2 {
		t.Fatalf("last round before restart: %s %s", rs[0].Result, rs[0].Commit)
	}
	h.start()
	h.waitRunning(map[string]string{"a": "v2", "b": "v2"})
	r := h.waitRound(rs[0].ID, func(r history.Round) bool { return r.Result == history.RoundSucceeded })
	if r.ID != rs[0].ID+1 || r.Commit != c2 {
		t.Fatalf("converging round %d %s", r.ID, r.Commit)
	}
	checkHistoryConsistent(t, h.agent)
}

// checkHistoryConsistent asserts that rounds have increasing IDs, none is
// left running (unless it is the agent's current one) and app records
// point at existing rounds.
func checkHistoryConsistent(t *testing.T, a *Agent) {
	t.Helper()
	rs, err := a.Rounds(1000)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	for i, r := range rs {
		ids[r.ID] = true
		if i > 0 && r.ID >= rs[i-1].ID {
			t.Fatalf("round IDs not decreasing: %d after %d", r.ID, rs[i-1].ID)
		}
		if i > 0 && r.Result == history.RoundRunning {
			t.Fatalf("round %d still running", r.ID)
		}
		if r.Result != history.RoundRunning && r.FinishedAt.IsZero() && r.Result != history.RoundInterrupted {
			t.Fatalf("round %d finished without a time", r.ID)
		}
	}
	for _, app := range []string{"a", "b"} {
		recs, err := a.History(app, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if !ids[rec.Round] {
				t.Fatalf("record of %s points at missing round %d", app, rec.Round)
			}
		}
	}
}

func TestAgentRestartAfterUncleanClose(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	h.stop()
	// What SIGKILL mid-round leaves on disk: a round recorded as running
	// (bbolt commits are durable, so the file holds exactly that) and a
	// half-written checkout.
	hist, _, err := history.Open(h.opts.DataDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	killed, err := hist.Begin("interval", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hist.Close()
	half := filepath.Join(h.opts.DataDir, "worktrees", ".tmp-0123456789ab-999")
	os.MkdirAll(half, 0o755)
	os.WriteFile(filepath.Join(half, "ferry.hcl"), []byte("app \"x"), 0o644)

	c2 := h.push("a v2", "v2", "v1")
	h.newAgent()
	r, err := h.agent.hist.Round(killed.ID)
	if err != nil || r == nil || r.Result != history.RoundInterrupted {
		t.Fatalf("killed round after restart: %+v %v", r, err)
	}
	h.start()
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	h.waitRound(killed.ID, func(r history.Round) bool { return r.Commit == c2 && r.Result == history.RoundSucceeded })
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-written checkout left behind: %v", err)
	}
	checkHistoryConsistent(t, h.agent)
}

func TestAgentHistoryLocked(t *testing.T) {
	h := newHarness(t, nil)
	o := h.opts
	if _, err := NewAgent(o); !errors.Is(err, history.ErrHistoryLocked) {
		t.Fatalf("second agent on one data dir: %v", err)
	}
}

func TestAgentTargetsError(t *testing.T) {
	fail := true
	var h *harness
	h = newHarness(t, func(o *Options) {
		o.Targets = func(ctx context.Context, cfg *spec.Config) (map[string]targets.Target, error) {
			if fail {
				return nil, errors.New("host token not set")
			}
			return map[string]targets.Target{"local": h.mem}, nil
		}
	})
	h.start()
	r := h.waitRound(0, func(history.Round) bool { return true })
	if r.Result != history.RoundFailed || !strings.Contains(r.Error, "host token not set") {
		t.Fatalf("round %s %q", r.Result, r.Error)
	}
	h.stop()
	fail = false
	h.newAgent()
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
}

func TestAgentBackoff(t *testing.T) {
	a := &Agent{opts: Options{Interval: 10 * time.Second, MaxBackoff: time.Minute}}
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 8 * time.Second, 10 * time.Second},
		{2, 16 * time.Second, 20 * time.Second},
		{3, 32 * time.Second, 40 * time.Second},
		{4, 48 * time.Second, time.Minute},
		{40, 48 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		for range 50 {
			if d := a.appBackoff(tt.n); d < tt.min || d > tt.max {
				t.Fatalf("appBackoff(%d) = %v, want [%v, %v]", tt.n, d, tt.min, tt.max)
			}
		}
	}
	if _, err := NewAgent(Options{Repo: "x", DataDir: t.TempDir(), Releaser: newSpecReleaser(),
		Targets: func(context.Context, *spec.Config) (map[string]targets.Target, error) { return nil, nil }, Path: "../up"}); !errors.Is(err, ErrAgentOptions) {
		t.Fatalf("path outside the repo: %v", err)
	}
	if _, err := NewAgent(Options{Repo: "x"}); !errors.Is(err, ErrAgentOptions) {
		t.Fatalf("no data dir: %v", err)
	}
}

func TestAgentReleaseErrorRetriesWithBackoff(t *testing.T) {
	h := newHarness(t, nil) // 1h interval: only the backoff brings the retries
	inner := h.opts.Releaser
	var mu stdsync.Mutex
	fails := 2
	h.opts.Releaser = release.ReleaserFunc(func(ctx context.Context, dir, commit string) (*release.RoundInput, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, errors.New("push: registry 127.0.0.1:5000 unreachable")
		}
		return inner.Release(ctx, dir, commit)
	})
	h.agent.Close()
	h.newAgent()
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	rs, err := h.agent.Rounds(10)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for i := len(rs) - 1; i >= 0; i-- {
		results = append(results, rs[i].Trigger+":"+string(rs[i].Result))
	}
	h.waitRound(0, func(r history.Round) bool { return r.Result == history.RoundSucceeded })
	if len(rs) < 2 || rs[len(rs)-1].Result != history.RoundFailed || !strings.Contains(rs[len(rs)-1].Error, "registry 127.0.0.1:5000 unreachable") {
		t.Fatalf("rounds: %v", results)
	}
	if rs[len(rs)-2].Trigger != "retry" {
		t.Fatalf("rounds: %v", results)
	}
}
