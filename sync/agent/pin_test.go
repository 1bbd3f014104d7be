package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/release"
)

func TestAgentPinHoldsUntilAppChanges(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	c2 := h.push("a v2", "v2", "v1")
	h.githubHook("gh-secret", "refs/heads/main", c2)
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	r := h.waitRound(0, func(r history.Round) bool { return r.Commit == c2 })

	// ferry rollback a: no digest means the previous recorded one.
	p, err := h.client().Rollback(context.Background(), "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest != appDigest("a", "v1") || p.BaseDigest != appDigest("a", "v2") {
		t.Fatalf("pin = %+v", p)
	}
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Trigger == "rollback" })
	if got := roundApps(r, "a"); len(got) != 1 || !got[0].Pinned || got[0].Result != "applied" {
		t.Fatalf("rollback round records: %+v", got)
	}

	// A commit that does not touch a keeps the pin.
	c3 := h.push("b v2", "v2", "v2")
	h.githubHook("gh-secret", "refs/heads/main", c3)
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Commit == c3 })
	if r.Result != history.RoundSucceeded {
		t.Fatalf("round %s: %s", r.Result, r.Error)
	}
	st := h.agent.Status()
	if len(st.Pins) != 1 || st.Pins[0].App != "a" {
		t.Fatalf("pins = %+v", st.Pins)
	}
	// Nor does a round without a new commit (drift repair keeps the pin).
	h.agent.Sync()
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Trigger == "api" })
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})

	// A commit that changes a supersedes the pin.
	c4 := h.push("a v3", "v3", "v2")
	h.githubHook("gh-secret", "refs/heads/main", c4)
	h.waitRunning(map[string]string{"a": "v3", "b": "v2"})
	r = h.waitRound(r.ID, func(r history.Round) bool { return r.Commit == c4 })
	var unpinned bool
	for _, rec := range roundApps(r, "a") {
		unpinned = unpinned || rec.Action == "unpin" && rec.Result == "superseded"
	}
	if !unpinned {
		t.Fatalf("no superseded record in %+v", r.Apps)
	}
	if st := h.agent.Status(); len(st.Pins) != 0 {
		t.Fatalf("pins after supersede = %+v", st.Pins)
	}

	// Rollback to any recorded digest, by prefix.
	v2 := appDigest("a", "v2")
	if _, err := h.client().Rollback(context.Background(), "a", strings.TrimPrefix(v2, "sha256:")[:12]); err != nil {
		t.Fatal(err)
	}
	h.waitRunning(map[string]string{"a": "v2", "b": "v2"})
	// Unknown digests and apps are refused and change nothing.
	_, err = h.client().Rollback(context.Background(), "a", "sha256:0000")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 409 {
		t.Fatalf("unknown digest: %v", err)
	}
	if _, err := h.client().Rollback(context.Background(), "nope", ""); !errors.As(err, &apiErr) || apiErr.Code != 404 {
		t.Fatalf("unknown app: %v", err)
	}
	if err := h.client().Unpin(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	h.waitRunning(map[string]string{"a": "v3", "b": "v2"})
	h.waitRound(r.ID, func(r history.Round) bool { return r.Trigger == "unpin" })

	// History of a, newest first, with the versions it ran.
	recs, err := h.client().History(context.Background(), "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Result == "applied" {
			seq = append(seq, recs[i].Digest)
		}
	}
	want := []string{appDigest("a", "v1"), appDigest("a", "v2"), appDigest("a", "v1"), appDigest("a", "v3"), appDigest("a", "v2"), appDigest("a", "v3")}
	if strings.Join(seq, ",") != strings.Join(want, ",") {
		t.Fatalf("applied sequence of a:\n got %v\nwant %v", seq, want)
	}
}

func TestAgentPinPersistsAcrossRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	c2 := h.push("a v2", "v2", "v1")
	h.githubHook("gh-secret", "refs/heads/main", c2)
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	if _, err := h.agent.Pin("a", ""); err != nil {
		t.Fatal(err)
	}
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	if err := h.agent.Suspend("b"); err != nil {
		t.Fatal(err)
	}
	h.stop()

	c3 := h.push("b v2", "v2", "v2")
	h.newAgent()
	h.start()
	r := h.waitRound(0, func(r history.Round) bool { return r.Commit == c3 })
	if r.Result != history.RoundSucceeded {
		t.Fatalf("round after restart %s: %s", r.Result, r.Error)
	}
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"}) // a pinned, b suspended
	st := h.agent.Status()
	if len(st.Pins) != 1 || len(st.Suspended) != 1 || st.Suspended[0].App != "b" {
		t.Fatalf("status pins %+v suspended %+v", st.Pins, st.Suspended)
	}
	if err := h.agent.Resume("b"); err != nil {
		t.Fatal(err)
	}
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
}

func TestAgentSuspendResume(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Interval = 100 * time.Millisecond })
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	if err := h.client().Suspend(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if err := h.client().Suspend(context.Background(), "nope"); err == nil {
		t.Fatal("suspending an unknown app worked")
	}
	c2 := h.push("both v2", "v2", "v2")
	h.waitRunning(map[string]string{"a": "v1", "b": "v2"})
	r := h.waitRound(0, func(r history.Round) bool { return r.Commit == c2 })
	if got := roundApps(r, "a"); len(got) != 1 || got[0].Result != "held" || !strings.Contains(got[0].Detail, "suspended") {
		t.Fatalf("a in round: %+v", got)
	}
	// A suspended app is not repaired either.
	h.mem.Delete(context.Background(), "a")
	h.waitRound(r.ID+1, func(history.Round) bool { return true })
	if _, ok := h.mem.Digests()["a"]; ok {
		t.Fatal("suspended app was recreated")
	}
	st := h.agent.Status()
	if len(st.Suspended) != 1 {
		t.Fatalf("suspended = %+v", st.Suspended)
	}
	for _, a := range st.Apps {
		if a.Name == "a" && !a.Suspended {
			t.Fatalf("app status %+v", a)
		}
	}
	if err := h.client().Resume(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	h.waitRunning(map[string]string{"a": "v2", "b": "v2"})
}

func TestAgentPassesSecrets(t *testing.T) {
	h := newHarness(t, nil)
	inner := h.opts.Releaser
	h.opts.Releaser = release.ReleaserFunc(func(ctx context.Context, dir, commit string) (*release.RoundInput, error) {
		in, err := inner.Release(ctx, dir, commit)
		if err != nil || in.Diagnostics.HasErrors() {
			return in, err
		}
		for i := range in.Desired.Targets {
			for j := range in.Desired.Targets[i].Apps {
				a := &in.Desired.Targets[i].Apps[j]
				a.Secrets = map[string]string{"TOKEN": "secret-for-" + commit[:7]}
			}
		}
		return in, nil
	})
	h.agent.Close()
	h.newAgent()
	h.start()
	h.waitRunning(map[string]string{"a": "v1", "b": "v1"})
	c1 := h.srv.Head("main")
	c2 := h.push("a v2", "v2", "v1")
	h.githubHook("gh-secret", "refs/heads/main", c2)
	h.waitRunning(map[string]string{"a": "v2", "b": "v1"})
	h.waitRound(0, func(r history.Round) bool { return r.Commit == c2 })
	h.mem.Mu.Lock()
	gotA, gotB := h.mem.Secrets["a"]["TOKEN"], h.mem.Secrets["b"]["TOKEN"]
	h.mem.Mu.Unlock()
	if gotA != "secret-for-"+c2[:7] || gotB != "secret-for-"+c1[:7] {
		t.Fatalf("secrets a=%q b=%q", gotA, gotB)
	}
	// Secrets never reach the history.
	rs, _ := h.agent.Rounds(10)
	for _, r := range rs {
		for _, rec := range r.Apps {
			if strings.Contains(rec.Detail+rec.Error, "secret-for") {
				t.Fatalf("secret in history: %+v", rec)
			}
		}
	}
	art, err := h.agent.hist.Artifact("a", appDigest("a", "v2"))
	if err != nil || art == nil || art.Secrets != nil {
		t.Fatalf("artifact record %+v %v", art, err)
	}
}
