package history

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/plan/plantest"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/google/go-cmp/cmp"
)

// fill records n rounds: app "a" is updated in the first three (v0, v1,
// v2) and unchanged after; app "b" is unchanged throughout. It pins a to
// v0, suspends b and records a host rollback.
func fill(t *testing.T, h *Store, n int) {
	t.Helper()
	for i := range n {
		r, err := h.Begin("interval", time.Unix(int64(i), 0).UTC())
		if err != nil {
			t.Fatal(err)
		}
		r.Result, r.Commit, r.FinishedAt = RoundSucceeded, fmt.Sprintf("c%d", i), time.Unix(int64(i), 5).UTC()
		v := fmt.Sprintf("v%d", min(i, 2))
		a := AppRecord{Round: r.ID, App: "a", Target: "t1", Digest: plantest.Dg(v), Action: "no-op", Result: "unchanged"}
		if i <= 2 {
			a.Action, a.Result = "update", "applied"
			if i > 0 {
				a.Previous = plantest.Dg(fmt.Sprintf("v%d", i-1))
			}
		}
		r.Apps = []AppRecord{a, {Round: r.ID, App: "b", Target: "t1", Digest: plantest.Dg("b"), Action: "no-op", Result: "unchanged"}}
		if err := h.Finish(r, []targets.DesiredApp{plantest.App("a", v), plantest.App("b", "b")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.SetPin(Pin{App: "a", Digest: plantest.Dg("v0"), BaseDigest: plantest.Dg("v2"), At: time.Unix(100, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := h.Suspend(Suspension{App: "b", At: time.Unix(101, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetHostRollback(HostRollback{Target: "t1", App: "a", From: plantest.Dg("v2"), To: plantest.Dg("v1"), Reason: "probe", Round: 3}); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotRoundTrip: a store's export, encoded and decoded, imported
// into an empty store, gives back the same pins, suspensions, host
// rollbacks, rounds, last success and change history, and the artifacts a
// rollback needs; the next round's ID follows the old store's.
func TestSnapshotRoundTrip(t *testing.T) {
	src, _, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src, 20)
	running, _ := src.Begin("interval", time.Unix(50, 0).UTC()) // a round cut short

	snap, err := src.Export(ExportOptions{Rounds: 10})
	if err != nil {
		t.Fatal(err)
	}
	b, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	dst, _, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	interrupted, err := dst.Import(dec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{running.ID}, interrupted); diff != "" {
		t.Errorf("interrupted (-want +got):\n%s", diff)
	}
	for what, get := range map[string]func(*Store) (any, error){
		"pins":           func(h *Store) (any, error) { return h.Pins() },
		"suspended":      func(h *Store) (any, error) { return h.Suspended() },
		"host rollbacks": func(h *Store) (any, error) { return h.HostRollbacks() },
		"last success":   func(h *Store) (any, error) { return h.LastSuccess() },
	} {
		want, err1 := get(src)
		got, err2 := get(dst)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what, diff)
		}
	}
	rs, _ := dst.Rounds(0)
	if len(rs) != 10 || rs[0].ID != running.ID || rs[0].Result != RoundInterrupted || rs[9].ID != running.ID-9 {
		t.Errorf("imported rounds: %d, newest %+v", len(rs), rs[0])
	}
	if want, _ := src.Round(running.ID - 1); !cmp.Equal(want, mustRound(t, dst, running.ID-1)) {
		t.Errorf("round %d differs: %s", running.ID-1, cmp.Diff(want, mustRound(t, dst, running.ID-1)))
	}
	// a's history: the three updates and its newest no-op, all runs of
	// identical no-ops folded; b: its first and newest records.
	recs, _ := dst.AppHistory("a", 0)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%d %s %s", r.Round, r.Action, r.Digest[len(r.Digest)-4:]))
	}
	want := []string{
		fmt.Sprintf("20 no-op %s", plantest.Dg("v2")[71-4:]),
		fmt.Sprintf("3 update %s", plantest.Dg("v2")[71-4:]),
		fmt.Sprintf("2 update %s", plantest.Dg("v1")[71-4:]),
		fmt.Sprintf("1 update %s", plantest.Dg("v0")[71-4:]),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a's imported history (-want +got):\n%s", diff)
	}
	if recs, _ := dst.AppHistory("b", 0); len(recs) != 2 || recs[0].Round != 20 || recs[1].Round != 1 {
		t.Errorf("b's imported history: %+v", recs)
	}
	// Every version of a is still known, so a rollback to v0 can deploy.
	for _, v := range []string{"v0", "v1", "v2"} {
		if a, err := dst.Artifact("a", plantest.Dg(v)); err != nil || a == nil || a.Digest != plantest.Dg(v) {
			t.Errorf("artifact a@%s after import: %+v %v", v, a, err)
		}
	}
	next, _ := dst.Begin("start", time.Now())
	if next.ID != running.ID+1 {
		t.Errorf("next round %d, want %d", next.ID, running.ID+1)
	}

	// Importing again is idempotent, and the snapshot's pins replace the
	// store's: a pin made only here is gone.
	if err := dst.SetPin(Pin{App: "zz", Digest: plantest.Dg("zz")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(dec); err != nil {
		t.Fatal(err)
	}
	if pins, _ := dst.Pins(); len(pins) != 1 || pins["a"].Digest != plantest.Dg("v0") {
		t.Errorf("pins after a second import: %+v", pins)
	}
}

func mustRound(t *testing.T, h *Store, id uint64) *Round {
	t.Helper()
	r, err := h.Round(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSnapshotShrink: shrinking drops old rounds first, then old app
// records, never pins, suspensions, host rollbacks or an app's newest
// record, and keeps the artifacts those still name.
func TestSnapshotShrink(t *testing.T) {
	h, _, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fill(t, h, 40)
	s, err := h.Export(ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rounds) != 40 {
		t.Fatalf("exported %d rounds", len(s.Rounds))
	}
	n := 0
	for s.Shrink() {
		n++
		if n > 100 {
			t.Fatal("Shrink never stops")
		}
	}
	if len(s.Rounds) != 0 || len(s.Pins) != 1 || len(s.Suspended) != 1 || len(s.HostRollbacks) != 1 {
		t.Fatalf("after shrinking: %d rounds, pins %v, suspended %v, rollbacks %v", len(s.Rounds), s.Pins, s.Suspended, s.HostRollbacks)
	}
	last := map[string]uint64{}
	for _, r := range s.Apps {
		last[r.App] = r.Round
	}
	if diff := cmp.Diff(map[string]uint64{"a": 40, "b": 40}, last); diff != "" {
		t.Errorf("newest records left (-want +got):\n%s", diff)
	}
	var arts []string
	for _, a := range s.Artifacts {
		arts = append(arts, a.Name+"@"+a.Digest[len(a.Digest)-4:])
	}
	// v0 is pinned, v1 and v2 are the host rollback's, b is b's newest.
	want := []string{"a@" + plantest.Dg("v0")[67:], "a@" + plantest.Dg("v1")[67:], "a@" + plantest.Dg("v2")[67:], "b@" + plantest.Dg("b")[67:]}
	slices.Sort(arts)
	slices.Sort(want)
	if diff := cmp.Diff(want, arts); diff != "" {
		t.Errorf("artifacts left (-want +got):\n%s", diff)
	}
}

func TestDecodeSnapshotRefusesGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"not gzip": []byte("{}"),
		"empty":    nil,
	} {
		if _, err := DecodeSnapshot(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s := &Snapshot{Version: SnapshotVersion + 1}
	b, _ := s.Encode()
	if _, err := DecodeSnapshot(b); err == nil {
		t.Error("a newer version: no error")
	}
}
