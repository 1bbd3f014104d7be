package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// agentE2EFlakyHCL is app name on the flaky-health reactor (NAME.wasm):
// its health path answers 200 three times, then 500; probed every 50ms,
// two failures in a row make it unhealthy, and within its 30s bake the
// host rolls it back by itself.
func agentE2EFlakyHCL(name string) string {
	return `app "` + name + `" {
  hosts = ["` + name + `.localhost"]

  component "web" {
    wasm     = "./` + name + `.wasm"
    executor = "reactor"
    routes   = ["/..."]

    limits {
      max_concurrency = 1
    }

    health {
      path              = "/healthz"
      interval          = "50ms"
      failure_threshold = 2
      bake              = "30s"
    }
  }
}
`
}

// TestAgentE2EHostHealthRollback: the agent releases (builds, pushes and
// signs) a version onto a real host that passes its deploy probe and then
// fails its health probes; the host rolls it back by itself; the agent
// records the rollback (status, history), and over the next rounds does
// not put the failed digest again (the host counts the PUTs), saying why in
// the held change; a newer commit that changes the app deploys at once.
func TestAgentE2EHostHealthRollback(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath) // runs the host's health prober
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	flaky, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flaky-health.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("alpha v1")
	w.Push()

	a := agentE2EStartAgent(t, e, srv.URL(), "--interval", "300ms")
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EIdle(t, a)
	good := agentE2EObserved(t, h.CtlURL)["alpha"]
	h.putCounts()

	// The flaky version: deployed (its deploy probe passes), then rolled
	// back by the host.
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EFlakyHCL("alpha")))
	w.WriteBytes("alpha.wasm", flaky)
	c2 := w.Commit("alpha on the flaky reactor")
	w.Push()
	applied := agentE2EWaitRound(t, a, "that deployed "+c2, time.Minute, func(r history.Round) bool {
		return r.Commit == c2 && agentE2EApplied(r, "alpha", "update")
	})
	bad := agentE2ERecords(applied, "alpha")[0].Digest
	seen := agentE2EWaitRound(t, a, "that saw the host's rollback", time.Minute, func(r history.Round) bool {
		return slices.ContainsFunc(r.Apps, func(x history.AppRecord) bool { return x.App == "alpha" && x.Action == "host-rollback" })
	})
	i := slices.IndexFunc(seen.Apps, func(x history.AppRecord) bool { return x.Action == "host-rollback" })
	if rec := seen.Apps[i]; rec.Previous != bad || rec.Digest != good || !strings.Contains(rec.Detail, "answered 500") {
		t.Fatalf("host-rollback record %+v; want from %s to %s, saying why", rec, bad, good)
	}
	agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")

	// Three more rounds: the failed digest is held back, with the reason.
	later := agentE2EWaitRound(t, a, "three rounds later", time.Minute, func(r history.Round) bool {
		return r.ID >= seen.ID+3 && r.Result != history.RoundRunning
	})
	recs := agentE2ERecords(later, "alpha")
	if len(recs) != 1 || recs[0].Action != "hold" || recs[0].Digest != bad ||
		!strings.Contains(recs[0].Detail, "rolled "+bad[:len("sha256:")+12]) || !strings.Contains(recs[0].Detail, "until a newer commit changes app alpha") {
		t.Fatalf("alpha in round %d: %+v; want the update to %s held because the host rolled it back", later.ID, recs, bad)
	}
	if n := h.putCounts()["alpha"]; n != 1 {
		t.Fatalf("the host got %d PUTs of alpha; want 1 (the flaky version, once)", n)
	}
	if got := agentE2EObserved(t, h.CtlURL)["alpha"]; got != good {
		t.Fatalf("host runs alpha %s, want %s", got, good)
	}
	st := agentE2EStatus(t, a)
	if len(st.HostRollbacks) != 1 || st.HostRollbacks[0].From != bad || st.HostRollbacks[0].To != good {
		t.Fatalf("status host rollbacks %+v; want alpha from %s to %s", st.HostRollbacks, bad, good)
	}
	var ts *agent.AppTargetStatus
	for _, ap := range st.Apps {
		if ap.Name == "alpha" && len(ap.Targets) == 1 {
			ts = &ap.Targets[0]
		}
	}
	if ts == nil || ts.RolledBack == nil || ts.RolledBack.From != bad || ts.Result != "held" {
		t.Fatalf("status of alpha: %+v", st.Apps)
	}

	if out := agentE2ECLI(t, a, "status"); !strings.Contains(out, "Rolled back by target local: app alpha from "+strings.TrimPrefix(bad, "sha256:")[:12]) {
		t.Errorf("ferry status does not show the host rollback:\n%s", out)
	}

	// A newer commit that changes the app deploys again.
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v3"))
	c3 := w.Commit("alpha v3")
	w.Push()
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v3", time.Minute)
	agentE2EWaitRound(t, a, "of the commit that changes alpha", time.Minute, func(r history.Round) bool {
		return r.Commit == c3 && r.Result == history.RoundSucceeded
	})
	if st := agentE2EStatus(t, a); len(st.HostRollbacks) != 0 {
		t.Errorf("host rollbacks after a commit that changes alpha: %+v", st.HostRollbacks)
	}
	var hist []history.AppRecord
	if err := json.Unmarshal([]byte(agentE2ECLI(t, a, "history", "alpha", "-o", "json")), &hist); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host-rollback", "unhold"} {
		if !slices.ContainsFunc(hist, func(r history.AppRecord) bool { return r.Action == want }) {
			t.Errorf("ferry history alpha has no %s record: %+v", want, hist)
		}
	}
}
