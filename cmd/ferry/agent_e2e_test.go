package main

// End-to-end tests of `ferry agent` with real parts only: a bare git
// repository served by `git http-backend` on loopback and pushed to with the
// git CLI, a CNCF Distribution registry, cosign signatures made with a real
// key and verified by the host, and a real ferry-host (in process, or the
// built binary where a restart matters). Helpers are in
// agent_helpers_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
)

// TestAgentE2EPushReachesHost: a git push reaches a real host through the
// webhook path (interval 1h, so only the signed webhook can start the
// round) and through the polling path (interval 1s, no webhook).
func TestAgentE2EPushReachesHost(t *testing.T) {
	for _, tc := range []struct {
		name        string
		interval    string
		webhook     bool
		wantTrigger string
	}{
		{name: "webhook", interval: "1h", webhook: true, wantTrigger: "webhook:github"},
		{name: "polling", interval: "1s", wantTrigger: "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := agentE2ENewEnv(t)
			reg := agentE2ENewRegistry(t)
			h := agentE2ENewHost(t, e.pubPath)
			srv := gittest.NewServer(t, gittest.Options{})
			w := srv.Clone(t)
			w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
			w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
			c1 := w.Commit("alpha v1")
			w.Push()

			a := agentE2EStartAgent(t, e, srv.URL(), "--interval", tc.interval)
			agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
			before := agentE2EIdle(t, a)
			if st := agentE2EStatus(t, a); st.LastSuccessfulCommit != c1 {
				t.Fatalf("status after the first round: last good %q, want %s; errors %v", st.LastSuccessfulCommit, c1, st.Errors)
			}

			w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
			c2 := w.Commit("alpha v2")
			w.Push()
			if srv.Head("main") != c2 {
				t.Fatalf("the push did not reach the server: head %s, want %s", srv.Head("main"), c2)
			}
			if tc.webhook {
				// A bad signature is refused and starts nothing.
				if code := agentE2EGitHubPush(t, a.URL, "not-the-secret", c2); code != http.StatusUnauthorized {
					t.Fatalf("webhook with a bad signature: %d, want 401", code)
				}
				time.Sleep(300 * time.Millisecond)
				if rs, err := a.Client.Rounds(context.Background(), 1); err != nil || len(rs) != 1 || rs[0].ID != before {
					t.Fatalf("a bad webhook started a round: %+v %v", rs, err)
				}
				agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")
				if code := agentE2EGitHubPush(t, a.URL, agentE2EHookSecret, c2); code != http.StatusAccepted {
					t.Fatalf("signed webhook: %d, want 202", code)
				}
			}
			took := agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v2", time.Minute)
			t.Logf("push → serving via %s: %v", tc.name, took)

			r := agentE2EWaitRound(t, a, "that deployed "+c2, time.Minute, func(r history.Round) bool {
				return r.ID > before && r.Commit == c2 && r.Result != history.RoundRunning
			})
			if r.Result != history.RoundSucceeded || r.Trigger != tc.wantTrigger || !agentE2EApplied(r, "alpha", "update") {
				t.Fatalf("round %d: result %s trigger %q apps %+v; want succeeded, %q, alpha updated", r.ID, r.Result, r.Trigger, r.Apps, tc.wantTrigger)
			}
			// The host runs exactly the digest the agent pushed and signed
			// (the host verified the signature before running it).
			recs := agentE2ERecords(r, "alpha")
			if got := agentE2EObserved(t, h.CtlURL)["alpha"]; len(recs) != 1 || got != recs[0].Digest || !strings.Contains(recs[0].Digest, "sha256:") {
				t.Fatalf("host runs %s, the round recorded %+v", got, recs)
			}
			if st := agentE2EStatus(t, a); st.LastSuccessfulCommit != c2 || st.DesiredCommit != c2 {
				t.Fatalf("status: last good %s desired %s, want %s", st.LastSuccessfulCommit, st.DesiredCommit, c2)
			}
		})
	}
}

// TestAgentE2EInvalidSpecKeepsServing: a commit with invalid HCL deploys
// nothing (nothing is even uploaded), the previous version keeps serving,
// the error with file:line shows in `ferry status` and `ferry history`, and
// the next good commit deploys.
func TestAgentE2EInvalidSpecKeepsServing(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	good := agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha"))
	w.Write("deploy/ferry.hcl", good)
	w.WriteBytes("deploy/alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Write("README", "the spec is in deploy/\n")
	w.Commit("alpha v1")
	w.Push()

	a := agentE2EStartAgent(t, e, srv.URL(), "--path", "deploy", "--interval", "1h")
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	before := agentE2EIdle(t, a)
	d1 := agentE2EObserved(t, h.CtlURL)["alpha"]
	if d1 == "" {
		t.Fatal("the host does not report alpha")
	}

	// An unsupported argument, and a new module that must not deploy.
	bad := strings.Replace(good, `    executor = "wagi"`+"\n", `    executor = "wagi"`+"\n"+`    colour   = "blue"`+"\n", 1)
	line := slices.Index(strings.Split(bad, "\n"), `    colour   = "blue"`) + 1
	if bad == good || line == 0 {
		t.Fatal("could not make the spec invalid")
	}
	w.Write("deploy/ferry.hcl", bad)
	w.WriteBytes("deploy/alpha.wasm", agentE2EWasm(t, "alpha BAD"))
	cBad := w.Commit("invalid spec")
	w.Push()
	reg.reset()
	if code := agentE2EGitHubPush(t, a.URL, agentE2EHookSecret, cBad); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	r := agentE2EWaitRound(t, a, "that loaded the invalid commit", time.Minute, func(r history.Round) bool {
		return r.ID > before && r.Fetched == cBad && r.Result != history.RoundRunning
	})
	where := fmt.Sprintf("deploy/ferry.hcl:%d:", line)

	// Nothing deployed, nothing even pushed; the previous version serves.
	if r.Result != history.RoundFailed {
		t.Errorf("round %d result %s, want failed", r.ID, r.Result)
	}
	if got := agentE2EObserved(t, h.CtlURL)["alpha"]; got != d1 {
		t.Errorf("host runs %s after the invalid commit, want %s", got, d1)
	}
	agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")
	if up := reg.uploads(); up.Sessions != 0 || up.BlobPuts != 0 || len(up.Manifests) != 0 {
		t.Errorf("the invalid commit uploaded %+v to the registry", up)
	}

	// ferry status: spec errors with file:line, the error sentence, and the
	// commit still deployed.
	st := agentE2EStatus(t, a)
	wantDiag := history.SpecDiagnostic{Severity: "error", Summary: "Unsupported argument", File: "deploy/ferry.hcl", Line: line}
	if !slices.ContainsFunc(st.SpecErrors, func(d history.SpecDiagnostic) bool {
		return d.Severity == wantDiag.Severity && d.Summary == wantDiag.Summary && d.File == wantDiag.File && d.Line == wantDiag.Line
	}) {
		t.Errorf("status spec errors %+v, want one like %+v", st.SpecErrors, wantDiag)
	}
	if !slices.ContainsFunc(st.Errors, func(s string) bool { return strings.Contains(s, where) }) {
		t.Errorf("status errors %q do not name %s", st.Errors, where)
	}
	if st.FetchedCommit != cBad || st.DesiredCommit == cBad {
		t.Errorf("status: fetched %s desired %s; want fetched %s and the previous commit still desired", st.FetchedCommit, st.DesiredCommit, cBad)
	}
	if out := agentE2ECLI(t, a, "status"); !strings.Contains(out, "Error: ") || !strings.Contains(out, where) {
		t.Errorf("ferry status does not show the error at %s:\n%s", where, out)
	}

	// ferry history: the round, with the same position.
	var found bool
	for _, hr := range agentE2EHistory(t, a) {
		if hr.ID == r.ID {
			found = strings.Contains(hr.Error, where) && slices.ContainsFunc(hr.SpecErrors, func(d history.SpecDiagnostic) bool {
				return d.File == "deploy/ferry.hcl" && d.Line == line
			})
		}
	}
	if !found {
		t.Errorf("ferry history -o json has no round %d with the error at %s", r.ID, where)
	}
	if out := agentE2ECLI(t, a, "history"); !strings.Contains(out, where) {
		t.Errorf("ferry history does not show %s:\n%s", where, out)
	}

	// The next good commit deploys, and the errors are gone.
	w.Write("deploy/ferry.hcl", good)
	w.WriteBytes("deploy/alpha.wasm", agentE2EWasm(t, "alpha v3"))
	c3 := w.Commit("fix the spec")
	w.Push()
	if code := agentE2EGitHubPush(t, a.URL, agentE2EHookSecret, c3); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v3", time.Minute)
	agentE2EWaitRound(t, a, "that deployed the fix", time.Minute, func(r history.Round) bool {
		return r.Commit == c3 && r.Result == history.RoundSucceeded
	})
	if st := agentE2EStatus(t, a); len(st.SpecErrors) != 0 || len(st.Errors) != 0 || st.DesiredCommit != c3 {
		t.Errorf("status after the fix: desired %s, spec errors %+v, errors %q", st.DesiredCommit, st.SpecErrors, st.Errors)
	}
}

// TestAgentE2EDriftRepaired: with the ferry-host binary as the target, an
// app deleted by hand and a host restarted empty (new state directory) are
// both repaired by the next round, so within one interval.
func TestAgentE2EDriftRepaired(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	hp := agentE2EStartHostProc(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", hp.CtlURL, []string{"alpha", "beta"}, agentE2EAppHCL("alpha"), agentE2EAppHCL("beta")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.WriteBytes("beta.wasm", agentE2EWasm(t, "beta v1"))
	w.Commit("alpha and beta")
	w.Push()

	const interval = 2 * time.Second
	a := agentE2EStartAgent(t, e, srv.URL(), "--interval", interval.String())
	agentE2EWaitServing(t, hp.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EWaitServing(t, hp.AppsURL, "beta", "beta v1", time.Minute)
	base := agentE2EIdle(t, a) // an app serves before its PUT returns; wait for the round
	want := agentE2EObserved(t, hp.CtlURL)
	if len(want) != 2 {
		t.Fatalf("the host runs %v, want alpha and beta", want)
	}

	// 1. An app deleted by hand.
	if err := agentE2EControl(t, hp.CtlURL).Delete(context.Background(), "alpha"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if code, _ := agentE2EBody(hp.AppsURL, "alpha.localhost"); code == http.StatusOK {
		t.Fatal("alpha still serves after it was deleted")
	}
	took := agentE2EWaitServing(t, hp.AppsURL, "alpha", "alpha v1", time.Minute)
	repair := agentE2EWaitRound(t, a, "that re-created alpha", time.Minute, func(r history.Round) bool {
		return r.ID > base && r.Result != history.RoundRunning && agentE2EApplied(r, "alpha", "create")
	})
	agentE2ERepairedByNextRound(t, a, repair, deleted)
	if recs := agentE2ERecords(repair, "beta"); len(recs) != 1 || recs[0].Action != "no-op" {
		t.Errorf("beta in the repairing round: %+v, want left alone", recs)
	}
	t.Logf("app deleted by hand → serving again in %v (interval %v)", took, interval)

	// 2. The host restarted empty.
	hp.stop(t)
	stopped := time.Now()
	hp.start(t, t.TempDir())
	if got := agentE2EObserved(t, hp.CtlURL); len(got) != 0 {
		t.Fatalf("the new host is not empty: %v", got)
	}
	took = agentE2EWaitServing(t, hp.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EWaitServing(t, hp.AppsURL, "beta", "beta v1", time.Minute)
	repair2 := agentE2EWaitRound(t, a, "that re-created both apps", time.Minute, func(r history.Round) bool {
		return r.ID > repair.ID && r.Result == history.RoundSucceeded && agentE2EApplied(r, "alpha", "create") && agentE2EApplied(r, "beta", "create")
	})
	agentE2ERepairedByNextRound(t, a, repair2, hp.readyAt)
	// Rounds while the host was down did not pretend to succeed.
	rs, err := a.Client.Rounds(context.Background(), 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.StartedAt.After(stopped) && r.ID < repair2.ID && r.Result == history.RoundSucceeded {
			t.Errorf("round %d succeeded while the host was down or empty: %+v", r.ID, r.Apps)
		}
	}
	if diff := cmp.Diff(want, agentE2EObserved(t, hp.CtlURL)); diff != "" {
		t.Errorf("the restarted host runs other versions (-before +after):\n%s", diff)
	}
	t.Logf("host restarted empty → both apps serving in %v after it was ready (interval %v)", took, interval)
}

// agentE2ERepairedByNextRound checks that repair is the first round started
// after at, or one already running then: no round that started later came
// before it.
func agentE2ERepairedByNextRound(t *testing.T, a *agentE2EAgent, repair history.Round, at time.Time) {
	t.Helper()
	rs, err := a.Client.Rounds(context.Background(), 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ID < repair.ID && r.StartedAt.After(at) && r.Result == history.RoundSucceeded {
			t.Errorf("round %d started after the drift (%s) and succeeded without repairing it; round %d repaired it",
				r.ID, at.Format(time.RFC3339Nano), repair.ID)
		}
	}
}

// TestAgentE2ERollbackPin: `ferry rollback APP` pins the app to its
// previous version; the pin holds across new commits that do not touch the
// app, and a commit that changes the app supersedes it.
func TestAgentE2ERollbackPin(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"alpha", "beta"}, agentE2EAppHCL("alpha"), agentE2EAppHCL("beta")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.WriteBytes("beta.wasm", agentE2EWasm(t, "beta v1"))
	w.Commit("v1")
	w.Push()

	a := agentE2EStartAgent(t, e, srv.URL(), "--interval", "1s")
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)
	agentE2EWaitServing(t, h.AppsURL, "beta", "beta v1", time.Minute)
	agentE2EIdle(t, a) // an app serves before its PUT returns; wait for the round
	d1 := agentE2EObserved(t, h.CtlURL)["alpha"]
	if d1 == "" {
		t.Fatal("the host does not report alpha")
	}

	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	w.Commit("alpha v2")
	w.Push()
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v2", time.Minute)

	// Roll back: the previous version, from the history.
	out := agentE2ECLI(t, a, "rollback", "alpha")
	if !strings.Contains(out, d1) {
		t.Fatalf("ferry rollback alpha: %q, want a pin to %s", out, d1)
	}
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v1", time.Minute)

	// A commit that changes only beta: alpha stays pinned, over several
	// rounds.
	w.WriteBytes("beta.wasm", agentE2EWasm(t, "beta v2"))
	c3 := w.Commit("beta v2")
	w.Push()
	agentE2EWaitServing(t, h.AppsURL, "beta", "beta v2", time.Minute)
	deployed := agentE2EWaitRound(t, a, "that deployed beta v2", time.Minute, func(r history.Round) bool {
		return r.Commit == c3 && agentE2EApplied(r, "beta", "update")
	})
	later := agentE2EWaitRound(t, a, "two rounds later", time.Minute, func(r history.Round) bool {
		return r.ID >= deployed.ID+2 && r.Result != history.RoundRunning
	})
	if later.Commit != c3 || later.Result != history.RoundSucceeded {
		t.Fatalf("round %d: commit %s result %s (%s)", later.ID, later.Commit, later.Result, later.Error)
	}
	if recs := agentE2ERecords(later, "alpha"); len(recs) != 1 || recs[0].Digest != d1 || !recs[0].Pinned || recs[0].Action != "no-op" {
		t.Errorf("alpha in round %d: %+v, want pinned at %s and left alone", later.ID, recs, d1)
	}
	agentE2EWantServing(t, h.AppsURL, "alpha", "alpha v1")
	if got := agentE2EObserved(t, h.CtlURL)["alpha"]; got != d1 {
		t.Errorf("host runs alpha %s, want the pinned %s", got, d1)
	}
	st := agentE2EStatus(t, a)
	if len(st.Pins) != 1 || st.Pins[0].App != "alpha" || st.Pins[0].Digest != d1 {
		t.Errorf("status pins %+v, want alpha at %s", st.Pins, d1)
	}

	// A commit that changes alpha supersedes the pin.
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v3"))
	c4 := w.Commit("alpha v3")
	w.Push()
	agentE2EWaitServing(t, h.AppsURL, "alpha", "alpha v3", time.Minute)
	agentE2EWaitRound(t, a, "of the commit that changes alpha", time.Minute, func(r history.Round) bool {
		return r.Commit == c4 && r.Result == history.RoundSucceeded
	})
	if st := agentE2EStatus(t, a); len(st.Pins) != 0 {
		t.Errorf("pins after a commit that changes alpha: %+v", st.Pins)
	}
	agentE2EWantServing(t, h.AppsURL, "beta", "beta v2")
	var recs []history.AppRecord
	if err := json.Unmarshal([]byte(agentE2ECLI(t, a, "history", "alpha", "-o", "json")), &recs); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(recs, func(r history.AppRecord) bool {
		return r.Action == "unpin" && r.Result == "superseded" && r.Commit == c4
	}) {
		t.Errorf("ferry history alpha has no record of the pin superseded by %s: %+v", c4, recs)
	}
}

// TestAgentE2ESIGKILLMidRound kills the `ferry agent` binary with SIGKILL
// twice: during a slow build, then in the middle of an apply (one app
// deployed, the other's PUT in flight). The restarted agent converges,
// uploads no blob and no app manifest again, re-deploys only the app that
// was missing, and the history has every interrupted round marked so.
func TestAgentE2ESIGKILLMidRound(t *testing.T) {
	bin := agentE2EBuild(t, "ferry")
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	h := agentE2ENewHost(t, e.pubPath)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	// The build runs as the build user (nobody, as root): it signals
	// through a directory that user can write.
	ctl, err := os.MkdirTemp("", "ferry-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ctl) })
	if err := os.Chmod(ctl, 0o777); err != nil {
		t.Fatal(err)
	}
	marker, gate, pidFile := filepath.Join(ctl, "building"), filepath.Join(ctl, "gate"), filepath.Join(ctl, "pid")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The slow app's build announces itself, then waits for the gate
	// (at most 60 s, so that an orphan of a killed agent always ends).
	slowHCL := fmt.Sprintf(`app "slow" {
  hosts = ["slow.localhost"]

  component "web" {
    build {
      command = "echo $$ > '%s'; touch '%s'; i=0; while [ ! -e '%s' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; cp slow.src out.wasm"
      output  = "./out.wasm"
      watch   = ["slow.src"]
    }
    executor = "wagi"
    routes   = ["/..."]

    health {
      path = "/healthz"
    }
  }
}
`, pidFile, marker, gate)
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/e2e", h.CtlURL, []string{"slow", "wat"}, agentE2EAppHCL("wat"), slowHCL))
	w.WriteBytes("wat.wasm", agentE2EWasm(t, "wat v1"))
	w.WriteBytes("slow.src", agentE2EWasm(t, "slow v1"))
	c1 := w.Commit("v1")
	w.Push()

	dataDir := t.TempDir()
	args := agentE2EAgentArgs(t, e, srv.URL(), dataDir, "--interval", "1h")
	p1 := agentE2EStartAgentProc(t, bin, args)
	agentE2EWaitServing(t, h.AppsURL, "wat", "wat v1", time.Minute)
	agentE2EWaitServing(t, h.AppsURL, "slow", "slow v1", time.Minute)
	agentE2EIdle(t, p1)

	// Kill 1: during the slow build of commit 2.
	for _, p := range []string{gate, marker} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	w.WriteBytes("wat.wasm", agentE2EWasm(t, "wat v2"))
	w.WriteBytes("slow.src", agentE2EWasm(t, "slow v2"))
	c2 := w.Commit("v2")
	w.Push()
	reg.reset()
	if code := agentE2EGitHubPush(t, p1.URL, agentE2EHookSecret, c2); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	agentE2EWaitFile(t, marker, time.Minute)
	p1.kill(t)
	// Let the orphaned build command finish (it is no child of ours) and
	// wait until it has.
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	agentE2EWaitGone(t, pidFile)
	if up := reg.uploads(); up.Sessions != 0 || up.BlobPuts != 0 || len(up.Manifests) != 0 {
		t.Errorf("killed before pushing, yet uploaded %+v", up)
	}
	agentE2EWantServing(t, h.AppsURL, "wat", "wat v1")
	agentE2EWantServing(t, h.AppsURL, "slow", "slow v1")

	// Kill 2: mid-apply. wat is deployed; slow's PUT is in flight.
	h.holdPuts("slow")
	h.putCounts()
	p2 := agentE2EStartAgentProc(t, bin, args)
	select {
	case <-h.blocked:
	case <-time.After(time.Minute):
		t.Fatalf("the restarted agent never deployed slow; log:\n%s", agentE2ETail(p2.stderr.String(), 40))
	}
	agentE2EWaitServing(t, h.AppsURL, "wat", "wat v2", time.Minute)
	p2.kill(t)
	pushed := reg.uploads()
	if pushed.BlobPuts == 0 {
		t.Fatalf("the second agent uploaded nothing before it was killed: %+v", pushed)
	}
	agentE2EWantServing(t, h.AppsURL, "slow", "slow v1")

	// Restart: converges with no duplicate pushes and only slow's PUT.
	h.holdPuts("")
	h.putCounts()
	reg.reset()
	p3 := agentE2EStartAgentProc(t, bin, args)
	agentE2EWaitServing(t, h.AppsURL, "slow", "slow v2", time.Minute)
	final := agentE2EWaitRound(t, p3, "that converged", time.Minute, func(r history.Round) bool {
		return r.Commit == c2 && r.Result != history.RoundRunning
	})
	agentE2EWantServing(t, h.AppsURL, "wat", "wat v2")

	up := reg.uploads()
	var appManifests []string
	for _, m := range up.Manifests {
		if !strings.HasSuffix(m, ".sig") {
			appManifests = append(appManifests, m)
		}
	}
	if up.Sessions != 0 || up.BlobPuts != 0 || len(appManifests) != 0 {
		t.Errorf("the restarted agent uploaded again: %d upload sessions, %d blobs, app manifests %q", up.Sessions, up.BlobPuts, appManifests)
	}
	t.Logf("before the second kill: %d blobs and %d manifests uploaded; after the restart: %d blobs, manifests %q",
		pushed.BlobPuts, len(pushed.Manifests), up.BlobPuts, up.Manifests)
	// Across the three agents, nothing was stored twice.
	if d, n := reg.duplicates(); len(d) != 0 || n < 20 {
		t.Errorf("stored more than once: %v (of %d distinct blobs and manifests stored; want at least 20)", d, n)
	}
	if diff := cmp.Diff(map[string]int{"slow": 1}, h.putCounts()); diff != "" {
		t.Errorf("PUTs to the host after the restart (-want +got):\n%s", diff)
	}
	if final.Result != history.RoundSucceeded || !agentE2EApplied(final, "slow", "update") {
		t.Errorf("converging round %d: %s %+v", final.ID, final.Result, final.Apps)
	}
	if recs := agentE2ERecords(final, "wat"); len(recs) != 1 || recs[0].Result != string(plan.OutcomeUnchanged) {
		t.Errorf("wat in the converging round: %+v, want unchanged", recs)
	}

	// The history: each kill left one interrupted round, none running.
	type row struct {
		ID      uint64
		Trigger string
		Commit  string
		Result  history.RoundResult
	}
	var got []row
	rs := agentE2EHistory(t, p3)
	for i := len(rs) - 1; i >= 0; i-- {
		got = append(got, row{rs[i].ID, rs[i].Trigger, rs[i].Fetched, rs[i].Result})
	}
	want := []row{
		{1, "start", c1, history.RoundSucceeded},
		{2, "webhook:github", c2, history.RoundInterrupted},
		{3, "start", c2, history.RoundInterrupted},
		{4, "start", c2, history.RoundSucceeded},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// agentE2EWaitFile waits until path exists.
func agentE2EWaitFile(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// agentE2EWaitGone waits until the process whose PID is in pidFile has
// exited.
func agentE2EWaitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 1 {
		t.Fatalf("bad pid file %q", b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for agentE2EAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the orphaned build command (pid %d) did not end", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agentE2EAlive reports whether process pid runs (a zombie does not count).
func agentE2EAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
