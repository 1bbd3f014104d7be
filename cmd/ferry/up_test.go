package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent"
)

// gitCmd runs the real git CLI in dir with a private configuration.
func gitCmd(t testing.TB, dir string, args ...string) string {
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

// getHost sends GET url with a Host header and returns the status and body.
func getHost(url, hostHeader string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = hostHeader
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitBody polls url (with a Host header) until its body contains want.
func waitBody(t testing.TB, url, hostHeader, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		code, body, err := getHost(url, hostHeader)
		if err == nil {
			last = fmt.Sprintf("%d %s", code, body)
			if code == 200 && strings.Contains(body, want) {
				return time.Since(start)
			}
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s (Host %s) did not serve %q within %v; last answer: %s", url, hostHeader, want, within, last)
	return 0
}

// upProcess is a `ferry up` run in process by startUp.
type upProcess struct {
	apps string // URL of the apps listener
	host string // URL of the host's control API
	data string // the data directory
	// devices is the URL of the fleet device API.
	devices string
	// dashboard is the URL of the web dashboard (/ of the agent API).
	dashboard string
	agent     *agent.Client
	stderr    *bytes.Buffer
}

var upLineRE = regexp.MustCompile(`^ferry up: (apps|host API|agent API|state|devices|dashboard)\s+(\S+)`)

// startUp runs `ferry up` in process with loopback addresses chosen by the
// system and args (flags, then DIR), and stops it when the test ends. It
// returns once ferry up printed its addresses; the agent's token is read
// from the data directory ferry up printed.
func startUp(t testing.TB, args ...string) *upProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &upProcess{stderr: &bytes.Buffer{}}
	done := make(chan int, 1)
	full := append([]string{"up", "--log-level", "warn",
		"--apps-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0", "--device-addr", "127.0.0.1:0"}, args...)
	go func() {
		done <- run(ctx, full, strings.NewReader(""), pw, p.stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry up exited %d\n%s", code, p.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry up did not stop within 30s of its context ending")
		}
	})
	lines := make(chan [2]string, 8)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := upLineRE.FindStringSubmatch(sc.Text()); m != nil {
				lines <- [2]string{m[1], m[2]}
			}
		}
		close(lines)
	}()
	got := map[string]string{}
	timeout := time.After(60 * time.Second)
	for len(got) < 6 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("ferry up stopped before printing its addresses; stderr:\n%s", p.stderr.String())
			}
			got[l[0]] = l[1]
		case <-timeout:
			t.Fatalf("ferry up printed no addresses within 60s; stderr:\n%s", p.stderr.String())
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	token, err := os.ReadFile(filepath.Join(got["state"], "agent.token"))
	if err != nil {
		t.Fatal(err)
	}
	p.apps, p.host, p.data, p.devices, p.dashboard = got["apps"], got["host API"], got["state"], got["devices"], got["dashboard"]
	p.agent = &agent.Client{BaseURL: got["agent API"], Token: strings.TrimSpace(string(token))}
	return p
}

// waitRound waits until the agent finished a round on commit and returns
// its status.
func (p *upProcess) waitRound(t testing.TB, commit string, within time.Duration) agent.Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := p.agent.Status(context.Background())
		if err == nil && st.LastRound != nil && st.LastRound.Commit == commit {
			return *st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no round finished on %s within %v (status error %v)\n%s", commit, within, err, p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cloneRepo clones this repository's HEAD into a temp dir on a branch.
func cloneRepo(t testing.TB) string {
	t.Helper()
	clone := filepath.Join(t.TempDir(), "ferry")
	gitCmd(t, testenv.RepoRoot(t), "clone", "--quiet", "--no-hardlinks", testenv.RepoRoot(t), clone)
	if branch := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "--abbrev-ref", "HEAD")); branch == "HEAD" {
		gitCmd(t, clone, "checkout", "-q", "-b", "main")
	}
	return clone
}

// TestUpServesExamplesAndCommits is the in-process twin of
// TestNewcomerMakeRun (quicker to debug: no make, no ports of its own):
// `ferry up examples` in a clone of this repository, with the default data
// directory, from another current directory (the test's). Every curl line
// of the README's tour answers what it promises, from its own app; an edit
// committed to an example serves without a restart.
func TestUpServesExamplesAndCommits(t *testing.T) {
	clone := cloneRepo(t)
	head := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "HEAD"))
	lines := readTour(t, clone)
	checks := tourChecks(t, clone, lines)
	up := startUp(t, "--interval", "1h", filepath.Join(clone, "examples"))

	// The Go examples are built on the way: allow for a cold Go build cache.
	st := up.waitRound(t, head, 5*time.Minute)
	if _, err := os.Stat(filepath.Join(clone, ".ferry", "up", "cosign.key")); err != nil {
		t.Errorf("the state is not beside the repository: %v", err)
	}
	for _, l := range lines {
		c := checks[l.App]
		for i := range c.runs {
			code, body, err := getHost(tourURL(l, up.apps), l.Host)
			if want := c.want(i); err != nil || code != 200 || body != want {
				t.Errorf("%s\n  run %d answered %d %q (%v)\n  the README promises %q", l.Line, i+1, code, clip(body), err, clip(want))
			}
		}
	}
	checkTourOwners(t, st, lines)
	if t.Failed() {
		t.FailNow()
	}

	// Edit an example and commit; the new version serves without a restart
	// (and without the 1h poll: the agent watches the branch).
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
	took := waitBody(t, up.apps+"/", "hello-wat.localhost", to, 30*time.Second)
	t.Logf("commit → serving the new version took %v", took)
	// The other apps kept serving, and the counter its count.
	waitBody(t, up.apps+"/", "hello-go.localhost", "Hello, world, from ferry!", 5*time.Second)
	if code, body, err := getHost(up.apps+"/", "kv-counter.localhost"); err != nil || code != 200 || body != "4\n" {
		t.Errorf("kv-counter after the commit answered %d %q (%v), want \"4\\n\"", code, body, err)
	}
}

// soloSpec is an app with no hosts: the local host's default app.
const soloSpec = `app "solo" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
  }
}
`

// newSoloDir returns a directory (not a git repository) with one WAT app
// that declares no hosts, in a subdirectory "apps" of its root.
func newSoloDir(t testing.TB) (root, apps string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "repo")
	apps = filepath.Join(root, "apps", "solo")
	if err := os.MkdirAll(apps, 0o755); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ferry.hcl": []byte(soloSpec), "hello.wasm": wasm} {
		if err := os.WriteFile(filepath.Join(apps, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, filepath.Join(root, "apps")
}

// TestUpStateBesideRepoAndWatch runs `ferry up DIR` from a current
// directory outside DIR's repository, with a poll interval of an hour:
// the state lands in the repository's root (git-ignored, so the next
// commit does not take it), ferry status run inside the repository finds
// the agent and names the default app, and a commit serves within seconds
// because the agent watches the branch ref.
func TestUpStateBesideRepoAndWatch(t *testing.T) {
	root, dir := newSoloDir(t)
	gitCmd(t, root, "init", "-q", "-b", "main")
	gitCmd(t, root, "add", "-A")
	gitCmd(t, root, "commit", "-q", "-m", "solo")
	head := strings.TrimSpace(gitCmd(t, root, "rev-parse", "HEAD"))

	elsewhere := t.TempDir()
	t.Chdir(elsewhere)
	up := startUp(t, "--interval", "1h", dir)
	st := up.waitRound(t, head, time.Minute)

	data := filepath.Join(root, ".ferry", "up")
	for _, f := range []string{"cosign.key", "agent.json", "registry", "host", "agent", "build-cache", ".gitignore"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("state beside the repository: %v", err)
		}
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("ferry up wrote into the current directory: %v", entries)
	}
	if out := gitCmd(t, root, "status", "--porcelain"); out != "" {
		t.Errorf("git sees ferry up's state as changes to commit:\n%s", out)
	}
	if len(st.Apps) != 1 || !st.Apps[0].Default || len(st.Apps[0].Hosts) != 0 {
		t.Errorf("status apps = %+v, want solo as the default app", st.Apps)
	}
	// It answers any host name.
	waitBody(t, up.apps+"/", "anything.localhost", "Hello from WAT on ferry!", 5*time.Second)

	// ferry status, run in a subdirectory of the repository without flags,
	// finds the agent through .ferry/up/agent.json and names the default app.
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"status"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("ferry status exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Default app: solo (its spec declares no hosts") {
		t.Errorf("ferry status does not name the default app:\n%s", out.String())
	}

	// A commit serves without waiting for the hour-long poll.
	commitGreeting(t, filepath.Join(dir, "solo", "hello.wasm"), root, "Hello again, from ferry!")
	took := waitBody(t, up.apps+"/", "solo.localhost", "Hello again, from ferry!", 20*time.Second)
	t.Logf("commit → serving: %v", took)
}

// commitGreeting replaces the 24-byte greeting in the WAT module at wasm
// with text (24 bytes too) and commits it in repo.
func commitGreeting(t testing.TB, wasm, repo, text string) {
	t.Helper()
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	const before = "text/plain\n\n"
	i := bytes.Index(b, []byte(before))
	if i < 0 || len(text) != 24 || i+len(before)+24 > len(b) {
		t.Fatalf("%s has no greeting to replace with %q", wasm, text)
	}
	copy(b[i+len(before):], text)
	if err := os.WriteFile(wasm, b, 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, repo, "commit", "-q", "-am", "greeting: "+text)
}

// BenchmarkUpCommitToServing measures commit → serving under `ferry up`
// for a prebuilt WAT app: real git commits in a real repository, the real
// in-process registry, host and agent of ferry up, with the default poll
// interval (2 s); the agent is woken by its watch of the branch ref. It
// reports the p50, p90 and p95 of 20 commits per iteration (FERRY_BENCH_COMMITS overrides).
func BenchmarkUpCommitToServing(b *testing.B) {
	n := 20
	if v := os.Getenv("FERRY_BENCH_COMMITS"); v != "" {
		fmt.Sscan(v, &n)
	}
	root, dir := newSoloDir(b)
	gitCmd(b, root, "init", "-q", "-b", "main")
	gitCmd(b, root, "add", "-A")
	gitCmd(b, root, "commit", "-q", "-m", "solo")
	up := startUp(b, dir)
	up.waitRound(b, strings.TrimSpace(gitCmd(b, root, "rev-parse", "HEAD")), time.Minute)
	wasm := filepath.Join(dir, "solo", "hello.wasm")
	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		for range n {
			// From the moment git commit returned to the first request that
			// gets the new body (polled every 20 ms).
			text := fmt.Sprintf("Greeting number %08d", len(took))
			commitGreeting(b, wasm, root, text)
			took = append(took, waitBody(b, up.apps+"/", "solo.localhost", text, 30*time.Second))
		}
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	q := func(p float64) float64 { return took[int(p*float64(len(took)-1))].Seconds() }
	b.ReportMetric(q(0.5), "p50-s")
	b.ReportMetric(q(0.9), "p90-s")
	b.ReportMetric(q(0.95), "p95-s")
	b.ReportMetric(slices.Max(took).Seconds(), "max-s")
	b.ReportMetric(0, "ns/op")
}
