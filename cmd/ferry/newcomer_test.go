package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/readme"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent"
)

// makeRunPorts are the addresses `make run` listens on by default: apps,
// host control API, agent API, fleet device API, registry.
var makeRunPorts = []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:5000"}

// TestNewcomerMakeRun is what a new user does, on a fresh clone: make run,
// then every curl line of the README's tour, each checked against what its
// comment promises and answered by its own app; then an edit to an example,
// git commit, and the new version serves. It uses the clone's default
// relative paths and the README's default ports (it fails, naming the
// port, when one is taken: the reader's command would fail too).
//
// It clones this repository's HEAD: commit what you want it to see.
func TestNewcomerMakeRun(t *testing.T) {
	for _, tool := range []string{"git", "make", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the README's tour needs it", tool)
		}
	}
	// The README's default ports: the same machine-wide lock as every other
	// test that needs them (internal/readme's hand-run block).
	testenv.FixedPorts(t, 15*time.Minute, makeRunPorts...)

	clone := filepath.Join(t.TempDir(), "ferry")
	gitCmd(t, testenv.RepoRoot(t), "clone", "--quiet", "--no-hardlinks", testenv.RepoRoot(t), clone)
	head := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "HEAD"))
	lines := readTour(t, clone)
	checks := tourChecks(t, clone, lines)

	// make run, exactly as the README says, in its own process group.
	logPath := filepath.Join(t.TempDir(), "make-run.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	mk := exec.Command("make", "run")
	mk.Dir = clone
	mk.Stdout, mk.Stderr = logf, logf
	mk.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := mk.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- mk.Wait() }()
	showLog := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 8000 {
			b = append([]byte("...\n"), b[len(b)-8000:]...)
		}
		return string(b)
	}
	t.Cleanup(func() {
		// Stop what this test started: make's process group, by its id.
		syscall.Kill(-mk.Process.Pid, syscall.SIGINT) //nolint:errcheck // gone already is fine
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("make run did not stop within 30 s of SIGINT; killing its process group\n%s", showLog())
			syscall.Kill(-mk.Process.Pid, syscall.SIGKILL) //nolint:errcheck // best effort
			<-exited
		}
		if b, _ := os.ReadFile(logPath); !bytes.Contains(b, []byte("ferry up: stopped")) {
			t.Errorf("ferry up did not stop cleanly:\n%s", showLog())
		}
	})

	// Ready: the agent has finished a round on the clone's HEAD (bin/ferry
	// status, run in the clone as the README says, finds the agent).
	status := func() (agent.Status, error) {
		var st agent.Status
		cmd := exec.Command(filepath.Join(clone, "bin", "ferry"), "status", "-o", "json")
		cmd.Dir = clone
		out, err := cmd.Output()
		if err != nil {
			return st, fmt.Errorf("bin/ferry status: %w", err)
		}
		return st, json.Unmarshal(out, &st)
	}
	var st agent.Status
	deadline := time.Now().Add(8 * time.Minute) // make build, then cold builds of the Go examples
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("make run exited (%v) before it served:\n%s", err, showLog())
		default:
		}
		st, err = status()
		if err == nil && st.LastRound != nil && st.LastRound.Commit == head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no round finished on %s within 8 min (last status error: %v)\n%s", head[:12], err, showLog())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("ready: round %d on %s: %s", st.LastRound.ID, head[:12], st.LastRound.Result)
	if _, err := os.Stat(filepath.Join(clone, ".ferry", "up", "cosign.key")); err != nil {
		t.Errorf("the signing key is not in the clone's .ferry/up: %v", err)
	}
	if out := gitCmd(t, clone, "status", "--porcelain", "--ignored=no"); out != "" {
		t.Errorf("make run left files git would commit:\n%s", out)
	}

	// Every curl line, as the README has it, from the clone's root.
	curl := func(l tourLine) string {
		cmd := exec.Command("sh", "-c", l.Line)
		cmd.Dir = clone
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: %v\n%s", l.Line, err, stderr.String())
		}
		return string(out)
	}
	for _, l := range lines {
		c := checks[l.App]
		for i := range c.runs {
			if got, want := curl(l), c.want(i); got != want {
				t.Errorf("%s\n  run %d answered %q\n  the README promises %q", l.Line, i+1, clip(got), clip(want))
			}
		}
	}
	checkTourOwners(t, st, lines)
	if t.Failed() {
		cmd := exec.Command(filepath.Join(clone, "bin", "ferry"), "status")
		cmd.Dir = clone
		out, _ := cmd.CombinedOutput()
		t.Fatalf("bin/ferry status:\n%s\nmake run:\n%s", out, showLog())
	}

	// Edit an example, git commit, and the new version serves. The new text
	// has the same length, so the committed .wasm stays valid when the
	// string in its data segment is replaced like the one in the .wat.
	const from, to = "Hello from WAT on ferry!", "Hello again, from ferry!"
	for _, f := range []string{"hello.wat", "hello.wasm"} {
		p := filepath.Join(clone, "examples", "hello-wat", f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(from)) {
			t.Fatalf("%s does not contain %q", p, from)
		}
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte(from), []byte(to)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitCmd(t, clone, "commit", "-q", "-am", "hello-wat: new greeting")
	committed := time.Now()
	var wat tourLine
	for _, l := range lines {
		if l.App == "hello-wat" {
			wat = l
		}
	}
	for {
		got := curl(wat)
		if got == to+"\n" {
			break
		}
		if time.Since(committed) > time.Minute {
			t.Fatalf("a minute after the commit, %s answers %q, not %q\n%s", wat.Line, got, to+"\n", showLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("commit → serving the new version: %v", time.Since(committed).Round(time.Millisecond))
	// The others kept serving, and the counter kept its count.
	for _, l := range lines {
		switch l.App {
		case "hello-go", "static-site":
			if got, want := curl(l), checks[l.App].want(0); got != want {
				t.Errorf("after the commit, %s answered %q, want %q", l.Line, clip(got), clip(want))
			}
		case "kv-counter":
			if got := curl(l); got != "4\n" {
				t.Errorf("after the commit, %s answered %q, want \"4\\n\"", l.Line, clip(got))
			}
		}
	}

	// The README's block next to `make run`, each line as pasted: status
	// names every example, history shows the round that deployed the
	// commit, and rollback pins hello-wat to its previous version, which
	// serves again.
	md, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var next []readme.Command
	for _, b := range readme.Blocks(string(md)) {
		if b.FirstLine() == "bin/ferry status # what runs where, errors with file:line" {
			next = readme.Commands(b)
		}
	}
	if len(next) != 3 {
		t.Fatalf("README.md's block next to `make run` has %d commands, want status, history and rollback: %+v", len(next), next)
	}
	headCommit := gitCmd(t, clone, "rev-parse", "HEAD")
	for _, c := range next {
		cmd := exec.Command("bash", "-c", c.Cmd)
		cmd.Dir = clone
		outb, err := cmd.CombinedOutput()
		out := string(outb)
		if err != nil {
			t.Fatalf("README.md:%d: %s: %v\n%s", c.Line, c.Cmd, err, out)
		}
		switch c.Cmd {
		case "bin/ferry status":
			for _, app := range []string{"hello-wat", "hello-go", "kv-counter", "static-site"} {
				if !strings.Contains(out, app) {
					t.Errorf("README.md:%d: %s does not name %s:\n%s", c.Line, c.Cmd, app, out)
				}
			}
		case "bin/ferry history hello-wat":
			if !strings.Contains(out, headCommit[:12]) || !strings.Contains(out, "update") {
				t.Errorf("README.md:%d: %s shows no update of hello-wat by %s:\n%s", c.Line, c.Cmd, headCommit[:12], out)
			}
		case "bin/ferry rollback hello-wat":
			if !strings.Contains(out, "Pinned hello-wat") {
				t.Errorf("README.md:%d: %s printed %q, want the pin", c.Line, c.Cmd, out)
			}
			pinned := time.Now()
			for got := curl(wat); got != from+"\n"; got = curl(wat) {
				if time.Since(pinned) > time.Minute {
					t.Fatalf("a minute after %s, %s answers %q, not the previous %q\n%s", c.Cmd, wat.Line, got, from+"\n", showLog())
				}
				time.Sleep(50 * time.Millisecond)
			}
		default:
			t.Errorf("README.md:%d: %q: this test does not know what the line promises; teach it", c.Line, c.Cmd)
		}
	}
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
