package main

// The crash suite: the real ferry-host binary and the real `ferry agent`
// binary are killed with SIGKILL at seeded random points while the agent
// deploys a new commit, and restarted on the same state. Helpers shared
// with the agent's end-to-end tests are in agent_helpers_test.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// chaosApps are the apps every trial deploys a new version of.
var chaosApps = []string{"alpha", "beta", "gamma"}

// chaosEnvInt returns the integer in environment variable name, or def.
func chaosEnvInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// TestChaosCrashAgentAndHost is issue 11's crash suite. Each trial pushes
// a commit that gives every app a new version, then SIGKILLs the agent,
// the host or both at a seeded random point of the deploy (uniform over
// the time the first deploy took), and restarts what it killed on the same
// data. Then, for every trial:
//
//   - everything converges: every app serves the trial's version and the
//     agent records a succeeded round of the trial's commit;
//   - a probe polling every app throughout sees only the previous or the
//     new version, and no error except failed connections while the host
//     is down (never a 404, a 5xx or a third version);
//   - the restarted host and agent open their stores (the host's state
//     directory, the agent's history) and serve at once.
//
// At the end the history holds every round ID from 1 to the last exactly
// once, none left running, every round a killed agent left marked
// interrupted; both bbolt and the host's state directory check clean.
//
// FERRY_CHAOS_TRIALS sets the number of trials (5 by default, 50 in `make
// chaos`), FERRY_CHAOS_SEED the seed (default: the time; the seed is
// logged, so a failing run can be repeated).
func TestChaosCrashAgentAndHost(t *testing.T) {
	trials := int(chaosEnvInt(t, "FERRY_CHAOS_TRIALS", 5))
	seed := uint64(chaosEnvInt(t, "FERRY_CHAOS_SEED", time.Now().UnixNano()))
	t.Logf("crash suite: %d trials, FERRY_CHAOS_SEED=%d", trials, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	bin := agentE2EBuild(t, "ferry")
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	stateDir := t.TempDir()
	hp := &agentE2EHostProc{bin: agentE2EBuild(t, "ferry-host"), pub: e.pubPath, appsAddr: testenv.FreeAddr(t), ctlAddr: testenv.FreeAddr(t)}
	hp.start(t, stateDir)
	t.Cleanup(func() {
		if hp.cmd != nil {
			hp.cmd.Process.Kill()
			<-hp.done
		}
	})

	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	blocks := make([]string, len(chaosApps))
	for i, a := range chaosApps {
		blocks[i] = agentE2EAppHCL(a)
	}
	w.Write("ferry.hcl", agentE2ESpec(reg.Addr+"/chaos", hp.CtlURL, chaosApps, blocks...))
	version := func(v int) {
		for _, a := range chaosApps {
			w.WriteBytes(a+".wasm", agentE2EWasm(t, fmt.Sprintf("%s v%d", a, v)))
		}
	}
	version(0)
	commits := []string{w.Commit("v0")}
	w.Push()

	dataDir := t.TempDir()
	args := agentE2EAgentArgs(t, e, srv.URL(), dataDir, "--interval", "1s", "--log-level", "info")
	agent := agentE2EStartAgentProc(t, bin, args)
	for _, a := range chaosApps {
		agentE2EWaitServing(t, hp.AppsURL, a, a+" v0", time.Minute)
	}
	agentE2EIdle(t, agent)

	probe := startChaosProbe(t, hp.AppsURL, 0, chaosApps...)

	var window time.Duration // how long an unharmed deploy takes
	kills := map[string]int{}
	var interrupted int
	for trial := 1; trial <= trials+1; trial++ {
		v := trial
		probe.allow(v)
		version(v)
		c := w.Commit(fmt.Sprintf("v%d", v))
		w.Push()
		commits = append(commits, c)
		started := time.Now()
		agentE2EGitHubPush(t, agent.URL, agentE2EHookSecret, c) // an agent that is busy finds it by polling

		victim := "none"
		if trial > 1 { // the first new commit measures the window
			victim = []string{"agent", "host", "both"}[rng.IntN(3)]
			delay := time.Duration(rng.Int64N(int64(window)))
			time.Sleep(delay)
			t.Logf("trial %d: SIGKILL %s %v after the push", trial-1, victim, delay.Round(time.Millisecond))
			kills[victim]++
			if victim == "agent" || victim == "both" {
				agent.kill(t)
				interrupted++ // at most one round was running
			}
			if victim == "host" || victim == "both" {
				probe.down.Store(true)
				hp.cmd.Process.Kill()
				<-hp.done
				probe.deadAt.Store(time.Now().UnixNano())
				hp.cmd = nil
				hp.start(t, stateDir) // opens its state or fails the test
				probe.down.Store(false)
				probe.deadAt.Store(0)
			}
			if victim == "agent" || victim == "both" {
				agent = agentE2EStartAgentProc(t, bin, args) // opens its history or fails the test
			}
		}
		for _, a := range chaosApps {
			agentE2EWaitServing(t, hp.AppsURL, a, fmt.Sprintf("%s v%d", a, v), 2*time.Minute)
		}
		agentE2EWaitRound(t, agent, "that deployed "+c, 2*time.Minute, func(r history.Round) bool {
			return r.Commit == c && r.Result == history.RoundSucceeded
		})
		if trial == 1 {
			window = max(time.Since(started)*6/5, 200*time.Millisecond)
			t.Logf("an unharmed deploy of %d apps took %v; kills land within %v of the push", len(chaosApps), time.Since(started).Round(time.Millisecond), window.Round(time.Millisecond))
		}
		if t.Failed() {
			break
		}
	}
	last := agentE2EIdle(t, agent)
	probe.halt()
	probe.check(t)

	// The history: every round from 1 to last exactly once, none running
	// but (with a 1 s interval) perhaps a newer one than last, each killed
	// agent's round (when it had one) interrupted.
	rs, err := agent.Client.Rounds(context.Background(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, len(rs))
	gotInterrupted := 0
	succeeded := map[string]bool{}
	for i, r := range rs {
		ids[i] = r.ID
		if r.Result == history.RoundRunning && r.ID <= last {
			t.Errorf("round %d is still running after the agent went idle", r.ID)
		}
		if r.Result == history.RoundInterrupted {
			gotInterrupted++
		}
		if r.Result == history.RoundSucceeded {
			succeeded[r.Commit] = true
		}
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("history round IDs are not 1..%d without gaps or duplicates: %v", last, ids)
		}
	}
	if len(ids) == 0 || ids[len(ids)-1] < last {
		t.Errorf("history ends at %v, the agent's newest round is %d", ids[len(ids)-1:], last)
	}
	if gotInterrupted > interrupted {
		t.Errorf("%d rounds interrupted, but the agent was killed only %d times", gotInterrupted, interrupted)
	}
	for i, c := range commits {
		if !succeeded[c] {
			t.Errorf("no succeeded round for commit %d (%s)", i, c)
		}
	}

	// The stores, closed: bbolt's own consistency check, and every app
	// record of the host with all its blobs present and matching their
	// digests.
	agent.kill(t)
	hp.stop(t)
	db, err := bolt.Open(filepath.Join(dataDir, "agent", "history.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("the agent's history: %v", err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("the agent's history fails bbolt's check: %v", err)
	}
	db.Close()
	st, err := state.Open(stateDir)
	if err != nil {
		t.Fatalf("the host's state: %v", err)
	}
	names, err := st.Names()
	if err != nil || len(names) != len(chaosApps) {
		t.Fatalf("the host's state holds %v (%v), want %v", names, err, chaosApps)
	}
	for _, n := range names {
		rec, err := st.Load(n)
		if err != nil {
			t.Errorf("the host's record of %s: %v", n, err)
			continue
		}
		if _, err := st.Modules(&rec.Current); err != nil {
			t.Errorf("the modules of %s's current version: %v", n, err)
		}
		if rec.Previous != nil {
			if _, err := st.Modules(rec.Previous); err != nil {
				t.Errorf("the modules of %s's previous version: %v", n, err)
			}
		}
	}
	t.Logf("crash suite: %d trials (%v kills), %d rounds, %d interrupted; probe: %d answers, %d refused while the host was down, %d cut short by a kill, versions seen %v",
		trials, kills, len(ids), gotInterrupted, probe.total.Load(), probe.downErrs.Load(), probe.cut.Load(), probe.versions())
}

// chaosProbe polls every app it is given on a host's app listener from
// two goroutines. Each request checks its answer against the versions
// allowed when it started: 200 with the body of one of them. While the
// host is down (down set before the kill, deadAt once the process is gone,
// both cleared when the new host is ready) a refused connection is
// counted, not wrong, and so is a request cut short (EOF, reset) that
// started before the process was gone; any other error is wrong.
type chaosProbe struct {
	url    string
	apps   []string
	client *http.Client
	down   atomic.Bool
	deadAt atomic.Int64 // unix nanoseconds; 0: not dead (yet)
	stop   chan struct{}
	wg     stdsync.WaitGroup

	total, downErrs, cut atomic.Int64

	mu      stdsync.Mutex
	allowed map[int]bool
	seen    map[int]int
	bad     []string
	badN    int
}

// startChaosProbe starts the probe with version v0 allowed.
func startChaosProbe(t *testing.T, appsURL string, v0 int, apps ...string) *chaosProbe {
	p := &chaosProbe{url: appsURL + "/", apps: apps, stop: make(chan struct{}), allowed: map[int]bool{v0: true}, seen: map[int]int{},
		client: &http.Client{Timeout: 30 * time.Second}}
	for i := range 2 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for n := i; ; n++ {
				select {
				case <-p.stop:
					return
				default:
				}
				p.one(p.apps[n%len(p.apps)])
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(p.halt)
	return p
}

// allow makes version v and the one before it the allowed answers.
func (p *chaosProbe) allow(v int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = map[int]bool{v: true, v - 1: true}
}

func (p *chaosProbe) one(app string) {
	p.mu.Lock()
	allowed := p.allowed
	p.mu.Unlock()
	p.total.Add(1)
	started := time.Now().UnixNano()
	req, _ := http.NewRequest(http.MethodGet, p.url, nil)
	req.Host = app + ".localhost"
	at := time.Now().Format("15:04:05.000")
	resp, err := p.client.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		dead := p.deadAt.Load()
		switch {
		case p.down.Load() && errors.Is(err, syscall.ECONNREFUSED):
			p.downErrs.Add(1)
		case p.down.Load() && (dead == 0 || started < dead):
			p.cut.Add(1) // in flight when the host was killed
		default:
			p.fail(fmt.Sprintf("%s %s: %v", at, app, err))
		}
		return
	}
	var v int
	body := strings.TrimSpace(string(b))
	if _, serr := fmt.Sscanf(body, app+" v%d", &v); resp.StatusCode != http.StatusOK || serr != nil || body != fmt.Sprintf("%s v%d", app, v) || !allowed[v] {
		p.fail(fmt.Sprintf("%s %s: %d %q (allowed versions %v)", at, app, resp.StatusCode, agentE2ETail(string(b), 3), allowed))
		return
	}
	p.mu.Lock()
	p.seen[v]++
	p.mu.Unlock()
}

func (p *chaosProbe) fail(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.badN++
	if len(p.bad) < 10 {
		p.bad = append(p.bad, msg)
	}
}

func (p *chaosProbe) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *chaosProbe) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.badN > 0 {
		t.Errorf("the probe got %d wrong answers of %d (first ones):\n  %s", p.badN, p.total.Load(), strings.Join(p.bad, "\n  "))
	}
}

// versions returns how many answers each version got.
func (p *chaosProbe) versions() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.seen)
}
