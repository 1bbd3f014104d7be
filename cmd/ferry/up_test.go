package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// gitCmd runs the real git CLI in dir with a private configuration.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(),
		"GIT_AUTHOR_NAME=ferry test", "GIT_AUTHOR_EMAIL=test@localhost",
		"GIT_COMMITTER_NAME=ferry test", "GIT_COMMITTER_EMAIL=test@localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitBody polls url (with a Host header) until its body contains want.
func waitBody(t *testing.T, url, hostHeader, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = hostHeader
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = resp.Status + " " + string(b)
			if resp.StatusCode == 200 && strings.Contains(string(b), want) {
				return time.Since(start)
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s (Host %s) did not serve %q within %v; last answer: %s", url, hostHeader, want, within, last)
	return 0
}

// TestUpServesExamplesAndCommits does what the README tells a user: run
// `ferry up examples` (make run) in a clone of this repository, see every
// example served, edit an example, commit — and see the new version served
// without restarting anything.
func TestUpServesExamplesAndCommits(t *testing.T) {
	clone := filepath.Join(t.TempDir(), "ferry")
	gitCmd(t, testenv.RepoRoot(t), "clone", "--quiet", "--no-hardlinks", testenv.RepoRoot(t), clone)
	branch := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "--abbrev-ref", "HEAD"))
	if branch == "HEAD" {
		gitCmd(t, clone, "checkout", "-q", "-b", "main")
	}
	data := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", data, "--interval", "1s", "--log-level", "warn",
			"--apps-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0",
			filepath.Join(clone, "examples")}, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry up exited %d\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry up did not stop within 30s of its context ending")
		}
	})

	appsRE := regexp.MustCompile(`ferry up: apps\s+(http://\S+)`)
	apps := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := appsRE.FindStringSubmatch(sc.Text()); m != nil {
				apps <- m[1]
			}
		}
	}()
	var appsURL string
	select {
	case appsURL = <-apps:
	case <-time.After(30 * time.Second):
		t.Fatalf("ferry up printed no apps URL; stderr:\n%s", stderr.String())
	}

	// Every example serves (the Go ones are built on the way: allow for a
	// cold Go build cache).
	waitBody(t, appsURL+"/", "hello-wat.localhost", "Hello from WAT on ferry!", 3*time.Minute)
	waitBody(t, appsURL+"/", "hello-go.localhost", "from ferry", 3*time.Minute)
	waitBody(t, appsURL+"/", "kv-counter.localhost", "", 3*time.Minute)

	// Edit an example and commit; the new version serves without a restart.
	// The new text has the same length, so the .wasm stays valid when the
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
		os.WriteFile(p, bytes.ReplaceAll(b, []byte(from), []byte(to)), 0o644)
	}
	gitCmd(t, clone, "commit", "-q", "-am", "hello-wat: new greeting")
	took := waitBody(t, appsURL+"/", "hello-wat.localhost", to, time.Minute)
	t.Logf("commit → serving the new version took %v (poll interval 1s)", took)
	// The other apps kept serving.
	waitBody(t, appsURL+"/", "hello-go.localhost", "from ferry", 5*time.Second)
}
