package main

// Helpers of the agent's end-to-end tests (agent_e2e_test.go): a real git
// server (gittest), a real registry behind a counting proxy, a real signing
// key, a real host (in process, or the ferry-host binary), and `ferry agent`
// in process or as a built binary. Every name starts with agentE2E.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/history"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// Secrets of the end-to-end tests. They are test values, not real ones.
const (
	agentE2EHostToken  = "e2e-host-token"
	agentE2EAPIToken   = "e2e-agent-token"
	agentE2EHookSecret = "e2e-hook-secret"
	agentE2EKeyPass    = "e2e-key-password"
)

// agentE2ETail returns the last n lines of s.
func agentE2ETail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// agentE2EEnv is the environment every agent test shares: a signing key
// pair, and the tokens and secrets in the environment
// variables ferry reads.
type agentE2EEnv struct {
	dir     string
	keyPath string
	pubPath string
}

// agentE2ENewEnv sets DOCKER_CONFIG (to an empty directory, so no login of
// the user's leaks in), FERRY_PASSWORD, FERRY_HOST_TOKEN, FERRY_AGENT_TOKEN
// and FERRY_WEBHOOK_GITHUB_SECRET for the test and writes a fresh cosign key
// pair. HOME stays: go builds need its caches.
func agentE2ENewEnv(t *testing.T) *agentE2EEnv {
	t.Helper()
	e := &agentE2EEnv{dir: t.TempDir()}
	t.Setenv("DOCKER_CONFIG", filepath.Join(e.dir, "docker"))
	t.Setenv("FERRY_AGENT_URL", "")
	t.Setenv("FERRY_PASSWORD", agentE2EKeyPass)
	t.Setenv("FERRY_HOST_TOKEN", agentE2EHostToken)
	t.Setenv("FERRY_AGENT_TOKEN", agentE2EAPIToken)
	t.Setenv("FERRY_WEBHOOK_GITHUB_SECRET", agentE2EHookSecret)
	priv, pub, err := signer.GenerateKeyPair([]byte(agentE2EKeyPass))
	if err != nil {
		t.Fatal(err)
	}
	e.keyPath, e.pubPath = filepath.Join(e.dir, "cosign.key"), filepath.Join(e.dir, "cosign.pub")
	if err := os.WriteFile(e.keyPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// agentE2EWasm returns the hello-wat example's module answering greeting
// (at most 24 bytes, padded with spaces) instead of its own greeting. The
// length is unchanged, so the module stays valid.
func agentE2EWasm(t testing.TB, greeting string) []byte {
	t.Helper()
	const from = "Hello from WAT on ferry!"
	if len(greeting) > len(from) {
		t.Fatalf("greeting %q is longer than %d bytes", greeting, len(from))
	}
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("hello.wasm does not contain %q", from)
	}
	return bytes.Replace(b, []byte(from), []byte(fmt.Sprintf("%-24s", greeting)), 1)
}

// agentE2EAppHCL is an app block serving NAME.wasm as a WAGI component on
// host NAME.localhost.
func agentE2EAppHCL(name string) string {
	return fmt.Sprintf(`app %q {
  hosts = [%q]

  component "web" {
    wasm     = "./%s.wasm"
    executor = "wagi"
    routes   = ["/..."]

    health {
      path = "/healthz"
    }
  }
}
`, name, name+".localhost", name)
}

// agentE2ESpec is a spec pushing to repo (HOST:PORT/PATH) and deploying
// the apps named to one host target at endpoint. blocks are the app blocks.
func agentE2ESpec(repo, endpoint string, apps []string, blocks ...string) string {
	quoted := make([]string, len(apps))
	for i, a := range apps {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`registry {
  repository = %q
}

%s
target "local" {
  type       = "host"
  apps       = [%s]
  endpoint   = %q
  credential = "local"
}
`, repo, strings.Join(blocks, "\n"), strings.Join(quoted, ", "), endpoint)
}

// agentE2ERegistry is a real registry (CNCF Distribution, in process)
// behind a reverse proxy on loopback that counts what clients upload.
type agentE2ERegistry struct {
	// Addr is the proxy's host:port; push and pull through it.
	Addr string

	mu        stdsync.Mutex
	sessions  int      // POST /v2/<name>/blobs/uploads/ (an upload starts)
	blobPuts  int      // PUT /v2/<name>/blobs/uploads/<id> (a blob is stored)
	manifests []string // "<name>:<reference>" of each PUT /v2/<name>/manifests/<reference>
	// times counts, since the start, each blob ("<name>@<digest>") and
	// manifest ("<name>:<reference>") stored; reset leaves it alone.
	times map[string]int
}

var (
	agentE2EUploadRE   = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/(.*)$`)
	agentE2EManifestRE = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
)

// agentE2ENewRegistry starts the registry and its counting proxy.
func agentE2ENewRegistry(t *testing.T) *agentE2ERegistry {
	t.Helper()
	upstream, err := url.Parse("http://" + testenv.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &agentE2ERegistry{times: map[string]int{}}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(upstream)
		pr.Out.Host = pr.In.Host // the registry builds upload URLs from it
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.count(req)
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.Addr = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *agentE2ERegistry) count(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := agentE2EUploadRE.FindStringSubmatch(req.URL.Path); m != nil {
		switch {
		case req.Method == http.MethodPost:
			r.sessions++
		case req.Method == http.MethodPut:
			r.blobPuts++
			r.times[m[1]+"@"+req.URL.Query().Get("digest")]++
		}
		return
	}
	if m := agentE2EManifestRE.FindStringSubmatch(req.URL.Path); m != nil && req.Method == http.MethodPut {
		r.manifests = append(r.manifests, m[1]+":"+m[2])
		r.times[m[1]+":"+m[2]]++
	}
}

// duplicates returns the blobs and manifests stored more than once since
// the registry started, with how many times, and how many distinct ones
// were stored.
func (r *agentE2ERegistry) duplicates() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, n := range r.times {
		if n > 1 {
			out[k] = n
		}
	}
	return out, len(r.times)
}

// agentE2EUploads is what clients uploaded through the proxy.
type agentE2EUploads struct {
	Sessions, BlobPuts int
	Manifests          []string
}

// uploads returns the counts since the last reset.
func (r *agentE2ERegistry) uploads() agentE2EUploads {
	r.mu.Lock()
	defer r.mu.Unlock()
	return agentE2EUploads{Sessions: r.sessions, BlobPuts: r.blobPuts, Manifests: append([]string(nil), r.manifests...)}
}

func (r *agentE2ERegistry) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions, r.blobPuts, r.manifests = 0, 0, nil
}

// agentE2EHost is a real ferry-host (runtime, state directory, control API
// that verifies signatures) running in the test process. Its control API
// counts the PUTs it gets per app, and can hold the PUT of one app until
// the client goes away.
type agentE2EHost struct {
	AppsURL, CtlURL string

	mu      stdsync.Mutex
	puts    map[string]int // PUTs that reached the host, per app
	block   string         // app whose PUT is held, "" for none
	blocked chan string    // receives the app name when a PUT is held
	release chan struct{}  // closed when holding ends
}

// agentE2ENewHost starts a host trusting pubPath, with the control token
// agentE2EHostToken.
func agentE2ENewHost(t *testing.T, pubPath string) *agentE2EHost {
	t.Helper()
	rt, ctl := newHost(t, pubPath, agentE2EHostToken)
	h := &agentE2EHost{puts: map[string]int{}, blocked: make(chan string, 16), release: make(chan struct{})}
	apps := httptest.NewServer(rt)
	ctlSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutPrefix(r.URL.Path, "/v1/apps/"); ok && r.Method == http.MethodPut && !strings.Contains(name, "/") {
			h.mu.Lock()
			held, release := h.block == name, h.release
			h.mu.Unlock()
			if held {
				// Read the body first: only then does the server notice
				// the client going away and cancel the context.
				io.Copy(io.Discard, r.Body)
				h.blocked <- name
				select {
				case <-r.Context().Done(): // the agent is gone
				case <-release:
					http.Error(w, "held by the test", http.StatusServiceUnavailable)
				}
				return
			}
			h.mu.Lock()
			h.puts[name]++
			h.mu.Unlock()
		}
		ctl.ServeHTTP(w, r)
	}))
	t.Cleanup(apps.Close)
	t.Cleanup(ctlSrv.Close)
	t.Cleanup(func() { h.holdPuts("") }) // before Close, which waits for handlers
	h.AppsURL, h.CtlURL = apps.URL, ctlSrv.URL
	return h
}

// holdPuts makes PUTs of app wait until their client goes away; "" ends
// holding and fails the PUTs still held.
func (h *agentE2EHost) holdPuts(app string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.block != "" {
		close(h.release)
		h.release = make(chan struct{})
	}
	h.block = app
}

// putCounts returns the PUTs that reached the host, per app, and resets
// the counts.
func (h *agentE2EHost) putCounts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.puts
	h.puts = map[string]int{}
	return out
}

// agentE2EControl returns a control API client of the host at ctlURL.
func agentE2EControl(t *testing.T, ctlURL string) *driver.Client {
	t.Helper()
	c, err := driver.NewClient(ctlURL, agentE2EHostToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// agentE2EObserved returns app → digest of what the host runs.
func agentE2EObserved(t *testing.T, ctlURL string) map[string]string {
	t.Helper()
	obs, err := agentE2EControl(t, ctlURL).Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return agentE2EDigests(obs)
}

func agentE2EDigests(obs []targets.ObservedApp) map[string]string {
	out := map[string]string{}
	for _, o := range obs {
		out[o.Name] = o.Digest
	}
	return out
}

// agentE2EBuild returns the path of the ferry or ferry-host binary, built
// once per test binary by e2eBinaries (e2e_helpers_test.go).
func agentE2EBuild(t *testing.T, name string) string {
	t.Helper()
	ferryBin, hostBin := e2eBinaries(t)
	switch name {
	case "ferry":
		return ferryBin
	case "ferry-host":
		return hostBin
	}
	t.Fatalf("no binary %q", name)
	return ""
}

// agentE2EHostProc is the ferry-host binary on fixed loopback addresses, so
// that a restarted host answers at the same endpoint.
type agentE2EHostProc struct {
	bin, pub           string
	appsAddr, ctlAddr  string
	AppsURL, CtlURL    string
	cmd                *exec.Cmd
	done               chan error
	stderr             *testenv.Buffer
	startedAt, readyAt time.Time
}

var agentE2EHostServingRE = regexp.MustCompile(`^ferry-host: serving apps on (http://\S+), control on (https?://\S+)$`)

// agentE2EStartHostProc builds ferry-host and starts it with a fresh state
// directory.
func agentE2EStartHostProc(t *testing.T, pubPath string) *agentE2EHostProc {
	t.Helper()
	p := &agentE2EHostProc{bin: agentE2EBuild(t, "ferry-host"), pub: pubPath, appsAddr: testenv.FreeAddr(t), ctlAddr: testenv.FreeAddr(t)}
	p.start(t, t.TempDir())
	t.Cleanup(func() {
		if p.cmd != nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// start runs the binary on stateDir and waits for its serving line.
func (p *agentE2EHostProc) start(t *testing.T, stateDir string) {
	t.Helper()
	cmd := exec.Command(p.bin, "--listen", p.appsAddr, "--control", p.ctlAddr, "--state-dir", stateDir,
		"--trust-key", p.pub, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "FERRY_HOST_TOKEN="+agentE2EHostToken)
	p.stderr = &testenv.Buffer{}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan error, 1)
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("ferry-host exited before serving:\n%s", p.stderr.String())
			}
			if m := agentE2EHostServingRE.FindStringSubmatch(l); m != nil {
				p.AppsURL, p.CtlURL, p.readyAt = m[1], m[2], time.Now()
				return
			}
		case <-timer.C:
			t.Fatalf("ferry-host printed no serving line within 30s:\n%s", p.stderr.String())
		}
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (p *agentE2EHostProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("ferry-host exited with %v after SIGTERM:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ferry-host still running 30s after SIGTERM")
	}
	p.cmd = nil
}

// agentE2EAgent is a running `ferry agent` (in process or a child).
type agentE2EAgent struct {
	URL    string
	Client *agent.Client
	stderr *testenv.Buffer
	// In process:
	cancel context.CancelFunc
	done   chan int
	// Child process:
	cmd     *exec.Cmd
	waitErr chan error
}

var agentE2EAPIRE = regexp.MustCompile(`API on (http://\S+)`)

// agentE2EAgentArgs are the arguments of `ferry agent` for repo with
// everything kept under dataDir, then extra.
func agentE2EAgentArgs(t *testing.T, e *agentE2EEnv, repo, dataDir string, extra ...string) []string {
	t.Helper()
	// The operator's credential for the test's hosts (any loopback port).
	creds := filepath.Join(dataDir, "credentials.hcl")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte("credential \"local\" {\n  endpoints = [\"http://127.0.0.1:*\"]\n  token_env = \"FERRY_HOST_TOKEN\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return append([]string{"agent", "--repo", repo, "--listen", "127.0.0.1:0", "--credentials", creds,
		"--data-dir", filepath.Join(dataDir, "agent"), "--key", e.keyPath,
		"--build-cache", filepath.Join(dataDir, "build"), "--cache-dir", filepath.Join(dataDir, "oci"),
		"--log-level", "debug", "--device-listen", ""}, extra...)
}

// agentE2EStartAgent runs `ferry agent` in process until the test ends and
// waits for its API address.
func agentE2EStartAgent(t *testing.T, e *agentE2EEnv, repo string, extra ...string) *agentE2EAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agentE2EAgent{stderr: &testenv.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	out := &testenv.Buffer{}
	args := agentE2EAgentArgs(t, e, repo, t.TempDir(), extra...)
	go func() { a.done <- run(ctx, args, strings.NewReader(""), out, a.stderr) }()
	t.Cleanup(func() {
		a.cancel()
		select {
		case code := <-a.done:
			if code != 0 {
				t.Errorf("ferry agent exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry agent did not stop within 30s of its context ending")
		}
		if t.Failed() {
			t.Logf("ferry agent log (tail):\n%s", agentE2ETail(a.stderr.String(), 60))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := agentE2EAPIRE.FindStringSubmatch(out.String()); m != nil {
			a.URL = m[1]
			break
		}
		select {
		case code := <-a.done:
			a.done <- code
			t.Fatalf("ferry agent exited %d before serving its API:\n%s", code, a.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry agent printed no API address within 30s:\n%s", a.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Client = &agent.Client{BaseURL: a.URL, Token: agentE2EAPIToken}
	return a
}

// agentE2EStartAgentProc runs the ferry binary bin as `ferry agent` with
// args and waits for its API address. The test kills it (kill) or it is
// killed when the test ends.
func agentE2EStartAgentProc(t *testing.T, bin string, args []string) *agentE2EAgent {
	t.Helper()
	cmd := exec.Command(bin, args...)
	proc, m := testenv.StartProcess(t, cmd, agentE2EAPIRE, 30*time.Second)
	a := &agentE2EAgent{URL: m[1], stderr: proc.Stderr, cmd: cmd, waitErr: proc.Done}
	t.Cleanup(func() {
		if a.cmd != nil {
			a.kill(t)
		}
	})
	a.Client = &agent.Client{BaseURL: a.URL, Token: agentE2EAPIToken}
	return a
}

// kill sends SIGKILL to the child agent and waits for it to die.
func (a *agentE2EAgent) kill(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-a.waitErr
	a.cmd = nil
	if ws, ok := err.(*exec.ExitError); !ok || ws.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the agent did not die of SIGKILL: %v", err)
	}
}

// agentE2EGitHubPush sends a GitHub push event for branch main at sha to
// the agent, signed with secret, and returns the status code.
func agentE2EGitHubPush(t testing.TB, agentURL, secret, sha string) int {
	t.Helper()
	body := fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"e2e/specs"}}`, sha)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, agentURL+"/hooks/github", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// agentE2EBody returns the status and body of GET appsURL/ for hostname,
// or 0 and the error text when the request fails.
func agentE2EBody(appsURL, hostname string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, appsURL+"/", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = hostname
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// agentE2EWaitServing polls until app (on host APP.localhost) answers 200
// with want in its body, and returns how long that took.
func agentE2EWaitServing(t *testing.T, appsURL, app, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var code int
	var body string
	for time.Since(start) < within {
		if code, body = agentE2EBody(appsURL, app+".localhost"); code == http.StatusOK && strings.Contains(body, want) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("app %s did not serve %q within %v; last answer: %d %q", app, want, within, code, body)
	return 0
}

// agentE2EWantServing checks that app serves want now.
func agentE2EWantServing(t *testing.T, appsURL, app, want string) {
	t.Helper()
	if code, body := agentE2EBody(appsURL, app+".localhost"); code != http.StatusOK || !strings.Contains(body, want) {
		t.Fatalf("app %s answers %d %q, want 200 with %q", app, code, body, want)
	}
}

// agentE2EWaitRound polls the agent's rounds (newest first) until one
// satisfies cond, and returns it.
func agentE2EWaitRound(t *testing.T, a *agentE2EAgent, what string, within time.Duration, cond func(history.Round) bool) history.Round {
	t.Helper()
	deadline := time.Now().Add(within)
	var last []history.Round
	for {
		rs, err := a.Client.Rounds(context.Background(), 200)
		if err == nil {
			last = rs
			for _, r := range rs {
				if cond(r) {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(last, "", "  ")
			t.Fatalf("no round %s within %v (err %v); rounds:\n%s", what, within, err, agentE2ETail(string(b), 80))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agentE2EIdle waits until the agent has finished at least one round and
// runs none, and returns the newest round's ID.
func agentE2EIdle(t *testing.T, a *agentE2EAgent) uint64 {
	t.Helper()
	r := agentE2EWaitRound(t, a, "finished with none running", time.Minute, func(r history.Round) bool { return true })
	for r.Result == history.RoundRunning {
		r = agentE2EWaitRound(t, a, "finished", time.Minute, func(x history.Round) bool { return x.ID >= r.ID && x.Result != history.RoundRunning })
	}
	return r.ID
}

// agentE2ERecords returns the records of app in r.
func agentE2ERecords(r history.Round, app string) []history.AppRecord {
	var out []history.AppRecord
	for _, rec := range r.Apps {
		if rec.App == app {
			out = append(out, rec)
		}
	}
	return out
}

// agentE2EApplied reports whether r applied action to app.
func agentE2EApplied(r history.Round, app, action string) bool {
	for _, rec := range agentE2ERecords(r, app) {
		if rec.Action == action && rec.Result == string(plan.OutcomeApplied) {
			return true
		}
	}
	return false
}

// agentE2ECLI runs ferry in process with args and the agent's URL, wants
// exit code 0, and returns stdout.
func agentE2ECLI(t *testing.T, a *agentE2EAgent, args ...string) string {
	t.Helper()
	code, out, errs := ferry(t, append(args, "--agent", a.URL)...)
	if code != exitOK {
		t.Fatalf("ferry %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// agentE2EStatus is `ferry status -o json`.
func agentE2EStatus(t *testing.T, a *agentE2EAgent) agent.Status {
	t.Helper()
	var st agent.Status
	out := agentE2ECLI(t, a, "status", "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("ferry status -o json: %v\n%s", err, out)
	}
	return st
}

// agentE2EHistory is `ferry history -o json` (the rounds, newest first).
func agentE2EHistory(t *testing.T, a *agentE2EAgent) []history.Round {
	t.Helper()
	var rs []history.Round
	out := agentE2ECLI(t, a, "history", "-o", "json", "--limit", "200")
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("ferry history -o json: %v\n%s", err, out)
	}
	return rs
}
