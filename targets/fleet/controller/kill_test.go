package controller

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// TestSimAgentProcess is the child process of TestSIGKILLResumes: an agent
// (a server and a controller over FERRY_FLEET_AGENT_DIR) that serves the
// device API on FERRY_FLEET_AGENT_ADDR and puts FERRY_FLEET_AGENT_PUT,
// until it is killed. It is skipped otherwise.
func TestSimAgentProcess(t *testing.T) {
	dir := os.Getenv("FERRY_FLEET_AGENT_DIR")
	if dir == "" {
		t.Skip("only the child of TestSIGKILLResumes")
	}
	n, _ := strconv.Atoi(os.Getenv("FERRY_FLEET_AGENT_N"))
	srv, err := server.Open(filepath.Join(dir, "server"), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	policy := simPolicy(n)
	policy.Rollout.HealthGate.Soak = time.Second
	ctl, err := New(Options{Name: "edge", Fleet: policy, Server: srv, Dir: filepath.Join(dir, "controller"), Resync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Put(context.Background(), want(os.Getenv("FERRY_FLEET_AGENT_PUT"))); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", os.Getenv("FERRY_FLEET_AGENT_ADDR")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, srv.Handler())
	fmt.Printf("listening %s\n", ln.Addr())
	ctl.Start(context.Background()) // until SIGKILL
}

// TestSIGKILLResumes: the agent process is killed with SIGKILL in the
// middle of rollouts (once in v1's, twice in v2's) and started again over
// the same directory on the same address; the simulated devices (in this
// process) all end on v2, and each was told to switch to v1 and to v2
// exactly once.
func TestSIGKILLResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agent processes")
	}
	const n = 300
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	url := "http://" + addr
	boot, err := server.Open(filepath.Join(dir, "server"), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := boot.CreateToken(server.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, "controller", "apps", app, "state.json")
	state := func() *fleet.State {
		data, err := os.ReadFile(statePath)
		if err != nil {
			return nil
		}
		st, err := fleet.LoadState(data)
		if err != nil {
			t.Fatalf("state.json after a kill: %v", err) // never half-written
		}
		return st
	}
	waitState := func(what string, cond func(*fleet.State) bool) *fleet.State {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if st := state(); st != nil && cond(st) {
				t.Logf("%s: %s", what, st.Summary())
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: not within 90s: %+v", what, state())
		return nil
	}
	start := func(put string) *testenv.Process {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSimAgentProcess$", "-test.timeout=0")
		cmd.Env = append(os.Environ(), "FERRY_FLEET_AGENT_DIR="+dir, "FERRY_FLEET_AGENT_ADDR="+addr,
			"FERRY_FLEET_AGENT_PUT="+put, "FERRY_FLEET_AGENT_N="+strconv.Itoa(n))
		p, _ := testenv.StartProcess(t, cmd, regexp.MustCompile(`^listening `), 60*time.Second)
		return p
	}
	kill := func(p *testenv.Process) {
		p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.Done
	}

	// The devices enroll first (with this process serving the store), so
	// that v1 rolls out in waves too.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 16}}
	defer client.CloseIdleConnections()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: boot.Handler()}
	go hs.Serve(ln)
	devs := enrollMany(t, client, url, secret, n, 0)
	hs.Close()
	client.CloseIdleConnections()

	agent := start(v1)
	ctx, cancel := context.WithCancel(context.Background())
	wait := runAll(t, ctx, devs, client, func() string { return url }, n)
	defer func() { cancel(); wait() }()
	waitState("v1 in wave 3", func(st *fleet.State) bool { return st.Wave >= 2 })
	kill(agent)
	agent = start(v1)
	waitState("v1 completes", func(st *fleet.State) bool {
		return st.Outcome == fleet.OutcomeCompleted && st.Counts().Healthy == n
	})
	kill(agent)

	agent = start(v2)
	waitState("v2 in wave 2", func(st *fleet.State) bool { return st.To == v2 && st.Wave >= 1 })
	kill(agent)
	agent = start(v2)
	waitState("v2 in wave 3", func(st *fleet.State) bool { return st.To == v2 && st.Wave >= 2 })
	kill(agent)
	agent = start(v2)
	st := waitState("v2 completes", func(st *fleet.State) bool {
		return st.To == v2 && st.Outcome == fleet.OutcomeCompleted && st.Counts().Healthy == n
	})
	if st.From != v1 || len(st.Devices) != n {
		t.Errorf("final state: %s", st.Summary())
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range devs {
		for {
			running, _ := d.state()
			if running == v2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if running, _ := d.state(); running != v2 || d.switchesTo(v2) != 1 || d.switchesTo(v1) != 1 {
			t.Errorf("device %s runs %q, told to switch to v1 %d and v2 %d times; want v2, each once", d.ID, running, d.switchesTo(v1), d.switchesTo(v2))
		}
	}
	kill(agent)
}
