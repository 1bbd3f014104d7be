package main

// The fault suite: the real `ferry agent` (in process, through run) and a
// real host talk to a real CNCF Distribution registry and a real git http
// server through internal/faultproxy, which takes them down, slows them,
// resets and truncates transfers mid-blob and corrupts bytes in flight.

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/faultproxy"
	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// TestFaultRegistryAndGit deploys one app version after another while one
// fault at a time is injected between the agent and host on one side and
// the registry or git server on the other. For every fault:
//
//   - the previous version keeps serving throughout (a probe polls the app
//     the whole time and accepts only the previous or the new version,
//     never an error or a third body, so nothing is half-deployed);
//   - the failed attempts are retried, with growing gaps (backoff), and the
//     new version serves once the fault is gone or has fired its times;
//   - a corrupted blob is never deployed: the host's digest check refuses
//     it and the corrupt body is never served.
func TestFaultRegistryAndGit(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	regp, err := faultproxy.New(reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { regp.Close() })
	h := agentE2ENewHost(t, e.pubPath)

	srv := gittest.NewServer(t, gittest.Options{})
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	gitp, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gitp.Close() })
	u.Host = gitp.Addr()

	w := srv.Clone(t) // pushes straight to the server, past the proxy
	w.Write("ferry.hcl", agentE2ESpec(regp.Addr()+"/fault", h.CtlURL, []string{"alpha"}, agentE2EAppHCL("alpha")))
	greeting := func(v int) string { return fmt.Sprintf("alpha v%d", v) }
	push := func(v int) string {
		w.WriteBytes("alpha.wasm", agentE2EWasm(t, greeting(v)))
		c := w.Commit(greeting(v))
		w.Push()
		return c
	}
	push(0)
	a := agentE2EStartAgent(t, e, u.String(), "--interval", "1s")
	agentE2EWaitServing(t, h.AppsURL, "alpha", greeting(0), time.Minute)

	probe := startChaosProbe(t, h.AppsURL, 0, "alpha")

	v := 0
	for _, tc := range []struct {
		name string
		// inject starts the fault; heal (optional) ends it once retries
		// were seen.
		inject func(v int)
		heal   func()
		// retries: at least this many failed attempts before success.
		retries int
		// fired: the proxy's fault must have fired at least this often.
		fired int
		// wantErr, when set, is in the error of every failed attempt.
		wantErr string
	}{
		{name: "registry down", retries: 3,
			inject: func(int) { regp.Down() },
			heal:   func() { mustUp(t, regp) }},
		{name: "registry slow",
			inject: func(int) { regp.Set(faultproxy.Fault{Latency: 20 * time.Millisecond, BytesPerSecond: 256 << 10}) },
			heal:   func() { regp.Set() }},
		// A blob cut short is retried by the host's pull or by the agent's
		// next attempt; either way the fault must fire and then pass.
		{name: "registry resets mid-blob", fired: 2,
			inject: func(v int) {
				regp.Set(faultproxy.Fault{Dir: faultproxy.Download, Match: []byte(greeting(v)), Action: faultproxy.Reset, Times: 2})
			}},
		{name: "registry truncates the blob", fired: 2,
			inject: func(v int) {
				regp.Set(faultproxy.Fault{Dir: faultproxy.Download, Match: []byte(greeting(v)), Action: faultproxy.Truncate, Times: 2})
			}},
		{name: "blob corrupted on the way to the host", retries: 3, fired: 3, wantErr: "digest mismatch",
			inject: func(v int) {
				regp.Set(faultproxy.Fault{Dir: faultproxy.Download, Match: []byte(greeting(v)), Action: faultproxy.Corrupt,
					Replace: []byte(strings.Replace(greeting(v), "alpha", "EVILa", 1))})
			},
			heal: func() { regp.Set() }},
		{name: "blob corrupted on the way to the registry", retries: 1, fired: 1,
			inject: func(v int) {
				regp.Set(faultproxy.Fault{Dir: faultproxy.Upload, Match: []byte(greeting(v)), Action: faultproxy.Corrupt,
					Replace: []byte(strings.Replace(greeting(v), "alpha", "EVILa", 1)), Times: 1})
			}},
		{name: "git server down", retries: 3,
			inject: func(int) { gitp.Down() },
			heal:   func() { mustUp(t, gitp) }},
		{name: "git server resets mid-fetch", retries: 2, fired: 2,
			inject: func(int) {
				gitp.Set(faultproxy.Fault{Dir: faultproxy.Download, Match: []byte("PACK"), Action: faultproxy.Reset, Times: 2})
			}},
	} {
		v++
		before := agentE2EIdle(t, a)
		probe.allow(v)
		tc.inject(v)
		c := push(v)
		start := time.Now()
		fired := 0
		sumFired := func() {
			for _, n := range append(regp.Fired(), gitp.Fired()...) {
				fired += n
			}
		}
		if tc.heal != nil {
			// Wait for the retries, then end the fault.
			agentE2EWaitFailures(t, a, before, tc.retries, 2*time.Minute)
			agentE2EWantServing(t, h.AppsURL, "alpha", greeting(v-1))
			sumFired() // healing may clear the counts
			tc.heal()
		}
		agentE2EWaitServing(t, h.AppsURL, "alpha", greeting(v), 2*time.Minute)
		r := agentE2EWaitRound(t, a, "that deployed "+c, 2*time.Minute, func(r history.Round) bool {
			return r.ID > before && r.Commit == c && r.Result == history.RoundSucceeded
		})
		agentE2EIdle(t, a)
		failed := agentE2EFailuresSince(t, a, before, ^uint64(0))
		if len(failed) < tc.retries {
			t.Errorf("%s: %d failed attempts before round %d deployed, want at least %d", tc.name, len(failed), r.ID, tc.retries)
		}
		agentE2EWantBackoff(t, tc.name, failed)
		if tc.heal == nil {
			sumFired()
		}
		for _, f := range failed {
			if !strings.Contains(f.Error, tc.wantErr) {
				t.Errorf("%s: round %d failed with %q, want an error with %q", tc.name, f.ID, f.Error, tc.wantErr)
			}
		}
		if fired < tc.fired {
			t.Errorf("%s: the fault fired %d times, want at least %d", tc.name, fired, tc.fired)
		}
		regp.Set()
		gitp.Set()
		t.Logf("%s: v%d serving after %v, %d failed attempts, fault fired %d times", tc.name, v, time.Since(start).Round(time.Millisecond), len(failed), fired)
		if t.Failed() {
			break
		}
	}
	probe.halt()
	probe.check(t)
	t.Logf("probe: %d answers, versions seen %v", probe.total.Load(), probe.versions())
}

func mustUp(t *testing.T, p *faultproxy.Proxy) {
	t.Helper()
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
}

// agentE2EFailuresSince returns the rounds after after and before until
// in which a step failed (oldest first): the failed attempts. Rounds that
// only waited out a backoff (their release skipped, the app held) do not
// count.
func agentE2EFailuresSince(t *testing.T, a *agentE2EAgent, after, until uint64) []history.Round {
	t.Helper()
	rs, err := a.Client.Rounds(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []history.Round
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r.ID <= after || r.ID >= until || r.Result == history.RoundRunning {
			continue
		}
		if slices.ContainsFunc(r.Steps, func(s history.StepResult) bool { return s.Status == history.StepFailed }) {
			out = append(out, r)
		}
	}
	return out
}

// agentE2EWaitFailures waits until n rounds after after have failed.
func agentE2EWaitFailures(t *testing.T, a *agentE2EAgent, after uint64, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(agentE2EFailuresSince(t, a, after, ^uint64(0))) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d failed rounds after round %d within %v", n, after, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentE2EWantBackoff checks that attempt k+1 (k from 1) ended at least
// 0.8 × 2^(k-1) × the interval (1 s) after attempt k started: the agent
// waited out a doubling backoff with at most 20% jitter before retrying.
// (Attempt k+1's retry happens before it ends and after the backoff that
// attempt k set, which was after it started, so the bound holds for a
// correct agent however slow the machine.)
func agentE2EWantBackoff(t *testing.T, what string, failed []history.Round) {
	t.Helper()
	for k := 1; k < len(failed); k++ {
		gap := failed[k].FinishedAt.Sub(failed[k-1].StartedAt)
		if want := time.Duration(float64(time.Second<<(k-1)) * 0.8); gap < want {
			t.Errorf("%s: attempt %d (round %d) ended %v after attempt %d (round %d) started, want at least %v (backoff)",
				what, k+1, failed[k].ID, gap, k, failed[k-1].ID, want)
		}
	}
}
