package history

import (
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/google/go-cmp/cmp"
)

func TestHistoryRetentionAndIndex(t *testing.T) {
	dir := t.TempDir()
	h, interrupted, err := Open(dir, 3)
	if err != nil || len(interrupted) != 0 {
		t.Fatal(err, interrupted)
	}
	defer h.Close()
	for i := range 5 {
		r, err := h.Begin("interval", time.Unix(int64(i), 0))
		if err != nil {
			t.Fatal(err)
		}
		r.Result = RoundSucceeded
		r.Commit = "c" + string(rune('0'+i))
		r.FinishedAt = time.Unix(int64(i), 5).UTC()
		r.Apps = []AppRecord{
			{Round: r.ID, App: "b", Target: "t2", Digest: plantest.Dg("b"), Action: "no-op", Result: "unchanged"},
			{Round: r.ID, App: "a", Target: "t1", Digest: plantest.Dg(r.Commit), Action: "update", Result: "applied"},
		}
		if err := h.Finish(r, []targets.DesiredApp{plantest.App("a", r.Commit)}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := h.Rounds(0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if diff := cmp.Diff([]uint64{5, 4, 3}, ids); diff != "" {
		t.Fatalf("rounds kept (-want +got):\n%s", diff)
	}
	if got := rs[0].Apps; got[0].App != "a" || got[1].App != "b" {
		t.Fatalf("records not sorted: %+v", got)
	}
	recs, err := h.AppHistory("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Round != 5 || recs[2].Round != 3 {
		t.Fatalf("app history = %+v", recs)
	}
	// Artifacts outlive round retention: every version stays rollbackable.
	ds, err := h.ArtifactDigests("a")
	if err != nil || len(ds) != 5 {
		t.Fatalf("artifacts = %v %v", ds, err)
	}
	if a, err := h.Artifact("a", plantest.Dg("c0")); err != nil || a == nil || a.Ref != "reg.test/a@"+plantest.Dg("c0") {
		t.Fatalf("artifact = %+v %v", a, err)
	}
	ls, err := h.LastSuccess()
	if err != nil || ls.Commit != "c4" || ls.Round != 5 {
		t.Fatalf("last success = %+v %v", ls, err)
	}
}

func TestHistoryMarksRunningInterrupted(t *testing.T) {
	dir := t.TempDir()
	h, _, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	done, _ := h.Begin("start", time.Now())
	done.Result = RoundSucceeded
	h.Finish(done, nil)
	running, _ := h.Begin("interval", time.Now())
	h.Close() // as SIGKILL would leave it: the round stays running

	h, interrupted, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if diff := cmp.Diff([]uint64{running.ID}, interrupted); diff != "" {
		t.Fatalf("interrupted (-want +got):\n%s", diff)
	}
	r, _ := h.Round(running.ID)
	if r.Result != RoundInterrupted || r.Error == "" {
		t.Fatalf("round = %+v", r)
	}
	if r, _ := h.Round(done.ID); r.Result != RoundSucceeded {
		t.Fatalf("finished round changed: %+v", r)
	}
	next, _ := h.Begin("start", time.Now())
	if next.ID != running.ID+1 {
		t.Fatalf("next id %d after %d", next.ID, running.ID)
	}
}
