package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// The end-to-end tests in apply_e2e_test.go run the real ferry and
// ferry-host binaries as processes, against an in-process registry.

const (
	e2eToken    = "e2e-host-token-0123456789"
	e2ePassword = "e2e-key-password"
	// Bodies of the two versions of the hello module (same length, so the
	// second is the first with bytes replaced in its data segment).
	bodyV1 = "Hello from WAT on ferry!\n"
	bodyV2 = "Howdy from WAT on ferry!\n"
)

var (
	e2eOnce     sync.Once
	e2eBinDir   string
	e2eFerryBin string
	e2eHostBin  string
	e2eBuildErr error
)

// e2eBinaries builds ferry and ferry-host once per test binary and returns
// their paths. TestMain removes them.
func e2eBinaries(t *testing.T) (ferryBin, hostBin string) {
	t.Helper()
	e2eOnce.Do(func() {
		root := testenv.RepoRoot(t)
		e2eBinDir, e2eBuildErr = os.MkdirTemp("", "ferry-e2e-bin-")
		if e2eBuildErr != nil {
			return
		}
		start := time.Now()
		for _, b := range []struct{ out, pkg string }{
			{filepath.Join(e2eBinDir, "ferry"), "./cmd/ferry"},
			{filepath.Join(e2eBinDir, "ferry-host"), "./cmd/ferry-host"},
		} {
			cmd := exec.Command("go", "build", "-buildvcs=false", "-o", b.out, b.pkg)
			cmd.Dir = root
			if msg, err := cmd.CombinedOutput(); err != nil {
				e2eBuildErr = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, msg)
				return
			}
		}
		e2eFerryBin = filepath.Join(e2eBinDir, "ferry")
		e2eHostBin = filepath.Join(e2eBinDir, "ferry-host")
		t.Logf("built ferry and ferry-host in %v", time.Since(start).Round(100*time.Millisecond))
	})
	if e2eBuildErr != nil {
		t.Fatal(e2eBuildErr)
	}
	return e2eFerryBin, e2eHostBin
}

// TestMain removes the binaries e2eBinaries built.
func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBinDir != "" {
		os.RemoveAll(e2eBinDir)
	}
	os.Exit(code)
}

// e2eWasm returns the committed hello-wat module (v1) and a copy that
// answers bodyV2 (v2).
func e2eWasm(t *testing.T) (v1, v2 []byte) {
	t.Helper()
	v1, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(v1, []byte(strings.TrimSuffix(bodyV1, "\n"))) != 1 {
		t.Fatalf("hello.wasm does not hold %q exactly once", bodyV1)
	}
	v2 = bytes.Replace(v1, []byte("Hello from WAT"), []byte("Howdy from WAT"), 1)
	return v1, v2
}

// e2eWorld is one deployment under test: a work directory with a signing
// key made by `ferry keygen`, an in-process registry, a ferry-host process
// trusting the key, and a spec directory pointing at it.
type e2eWorld struct {
	t        *testing.T
	ferryBin string
	work     string
	specDir  string
	regAddr  string
	host     *e2eHost
	client   *driver.Client
	env      []string
}

// e2eHost is a running ferry-host process.
type e2eHost struct {
	cmd     *exec.Cmd
	appsURL string
	ctlURL  string
	stderr  *testenv.Buffer
	done    chan error
}

var e2eServingRE = regexp.MustCompile(`^ferry-host: serving apps on (http://\S+), control on (https?://\S+)$`)

func newE2EWorld(t *testing.T) *e2eWorld {
	t.Helper()
	ferryBin, hostBin := e2eBinaries(t)
	work := t.TempDir()
	w := &e2eWorld{t: t, ferryBin: ferryBin, work: work, specDir: filepath.Join(work, "spec")}
	w.env = append(os.Environ(),
		"HOME="+work,
		"FERRY_PASSWORD="+e2ePassword,
		"FERRY_HOST_TOKEN="+e2eToken,
		"XDG_CACHE_HOME="+filepath.Join(work, "cache"),
	)
	if code, out, errs := w.ferry("keygen"); code != 0 {
		t.Fatalf("ferry keygen: exit %d\n%s\n%s", code, out, errs)
	}

	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	w.regAddr = reg.Addr()

	w.host = startE2EHost(t, w.env, hostBin,
		"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
		"--state-dir", filepath.Join(work, "host-state"),
		"--trust-key", filepath.Join(work, "cosign.pub"))
	w.client, err = driver.NewClient(w.host.ctlURL, e2eToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func startE2EHost(t *testing.T, env []string, argv ...string) *e2eHost {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	proc, m := testenv.StartProcess(t, cmd, e2eServingRE, 30*time.Second)
	return &e2eHost{cmd: cmd, stderr: proc.Stderr, done: proc.Done, appsURL: m[1], ctlURL: m[2]}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// e2eApp is one app of a generated spec: its name and its module.
type e2eApp struct {
	name string
	wasm []byte
}

// writeSpec (re)writes the spec directory: one WAGI app per entry, each
// with its own module file and host name NAME.localhost, and one host
// target "local" that runs them all.
func (w *e2eWorld) writeSpec(apps []e2eApp) {
	w.t.Helper()
	if err := os.MkdirAll(w.specDir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	var hcl strings.Builder
	names := make([]string, 0, len(apps))
	for _, a := range apps {
		if err := os.WriteFile(filepath.Join(w.specDir, a.name+".wasm"), a.wasm, 0o644); err != nil {
			w.t.Fatal(err)
		}
		fmt.Fprintf(&hcl, `app %q {
  hosts = [%q]

  component "web" {
    wasm     = %q
    executor = "wagi"
    routes   = ["/..."]

    limits {
      memory  = "1MiB"
      timeout = "5s"
    }

    health {
      path = "/healthz"
    }
  }
}

`, a.name, a.name+".localhost", "./"+a.name+".wasm")
		names = append(names, fmt.Sprintf("%q", a.name))
	}
	fmt.Fprintf(&hcl, `target "local" {
  type     = "host"
  apps     = [%s]
  endpoint = %q
}
`, strings.Join(names, ", "), w.host.ctlURL)
	if err := os.WriteFile(filepath.Join(w.specDir, "ferry.hcl"), []byte(hcl.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// releaseArgs are the flags plan and apply need: repository, key, caches,
// and a lock directory of this test's own.
func (w *e2eWorld) releaseArgs() []string {
	return []string{
		"--repository", w.regAddr + "/e2e",
		"--key", filepath.Join(w.work, "cosign.key"),
		"--build-cache", filepath.Join(w.work, "build-cache"),
		"--cache-dir", filepath.Join(w.work, "oci-cache"),
	}
}

// command returns an exec.Cmd running the ferry binary in the work
// directory with args.
func (w *e2eWorld) command(args ...string) *exec.Cmd {
	cmd := exec.Command(w.ferryBin, args...)
	cmd.Dir = w.work
	cmd.Env = w.env
	return cmd
}

// ferry runs the ferry binary to completion and returns its exit code,
// stdout and stderr.
func (w *e2eWorld) ferry(args ...string) (int, string, string) {
	w.t.Helper()
	cmd := w.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String(), errb.String()
	default:
		w.t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		return -1, "", ""
	}
}

// apply runs `ferry apply -auto-approve [extra...] SPEC` and returns the
// exit code, stdout and stderr.
func (w *e2eWorld) apply(extra ...string) (int, string, string) {
	w.t.Helper()
	args := append([]string{"apply", "-auto-approve", "--lock-dir", filepath.Join(w.work, "locks")}, extra...)
	args = append(args, w.releaseArgs()...)
	return w.ferry(append(args, w.specDir)...)
}

// planExit runs `ferry plan -detailed-exitcode SPEC` and returns its exit
// code and output.
func (w *e2eWorld) planExit() (int, string, string) {
	w.t.Helper()
	args := append([]string{"plan", "-detailed-exitcode"}, w.releaseArgs()...)
	return w.ferry(append(args, w.specDir)...)
}

// apps returns the host's apps by name, read through its control API.
func (w *e2eWorld) apps() map[string]api.AppInfo {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := w.client.Apps(ctx)
	if err != nil {
		w.t.Fatalf("listing the host's apps: %v", err)
	}
	out := make(map[string]api.AppInfo, len(list))
	for _, a := range list {
		out[a.Name] = a
	}
	return out
}

// digests returns each app's serving digest.
func (w *e2eWorld) digests() map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for n, a := range w.apps() {
		out[n] = a.Digest
	}
	return out
}

// waitQuiet waits until the host's apps have not changed for quiet, and
// returns their digests.
func (w *e2eWorld) waitQuiet(quiet, within time.Duration) map[string]string {
	w.t.Helper()
	deadline := time.Now().Add(within)
	last, since := w.digests(), time.Now()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			w.t.Fatalf("the host's apps kept changing for %v", within)
		}
		time.Sleep(50 * time.Millisecond)
		now := w.digests()
		if !equalMaps(now, last) {
			last, since = now, time.Now()
		}
	}
	return last
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// getBody requests / of app with its host name from the host's app
// listener.
func (w *e2eWorld) getBody(app string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, w.host.appsURL+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = app + ".localhost"
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// prober polls every app on the host's app listener, round after round,
// from a few goroutines, and records every answer that is not 200 with an
// allowed body.
type prober struct {
	url     string
	apps    []string
	allowed map[string][]string
	client  *http.Client

	workers int
	rounds  atomic.Int64
	total   atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	seen   map[string]map[string]int // app → body → answers
	bad    []string
	badN   int
	stopMu sync.Once
}

// startProber starts workers goroutines polling apps; allowed lists, per
// app, the bodies that may be served. It is stopped at the end of the test
// at the latest.
func startProber(t *testing.T, appsURL string, allowed map[string][]string, workers int) *prober {
	t.Helper()
	p := &prober{
		url:     appsURL + "/",
		allowed: allowed,
		workers: workers,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: workers, MaxIdleConnsPerHost: workers, IdleConnTimeout: time.Minute,
		}},
		stop: make(chan struct{}),
		seen: map[string]map[string]int{},
	}
	for a := range allowed {
		p.apps = append(p.apps, a)
	}
	sort.Strings(p.apps)
	for i := range workers {
		p.wg.Add(1)
		go p.run(i)
	}
	t.Cleanup(p.halt)
	return p
}

func (p *prober) run(offset int) {
	defer p.wg.Done()
	n := len(p.apps)
	for {
		for k := range n {
			select {
			case <-p.stop:
				return
			default:
			}
			p.one(p.apps[(offset+k)%n])
		}
		p.rounds.Add(1)
	}
}

func (p *prober) one(app string) {
	p.total.Add(1)
	req, _ := http.NewRequest(http.MethodGet, p.url, nil)
	req.Host = app + ".localhost"
	at := time.Now().Format("15:04:05.000")
	resp, err := p.client.Do(req)
	if err != nil {
		p.fail(fmt.Sprintf("%s %s: %v", at, app, err))
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		p.fail(fmt.Sprintf("%s %s: reading body: %v", at, app, err))
		return
	}
	body := string(b)
	ok := resp.StatusCode == http.StatusOK
	if ok {
		ok = false
		for _, a := range p.allowed[app] {
			if body == a {
				ok = true
			}
		}
	}
	if !ok {
		p.fail(fmt.Sprintf("%s %s: %d %q", at, app, resp.StatusCode, tail(body, 200)))
		return
	}
	p.mu.Lock()
	if p.seen[app] == nil {
		p.seen[app] = map[string]int{}
	}
	p.seen[app][body]++
	p.mu.Unlock()
}

func (p *prober) fail(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.badN++
	if len(p.bad) < 10 {
		p.bad = append(p.bad, msg)
	}
}

// waitFreshRound waits until at least one full round over every app has
// started and finished after the call.
func (p *prober) waitFreshRound(t *testing.T, within time.Duration) {
	t.Helper()
	// With W workers, W+1 more finished rounds mean some worker finished
	// two, the second of which started after this call.
	target := p.rounds.Load() + int64(p.workers) + 1
	deadline := time.Now().Add(within)
	for p.rounds.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the probe finished no fresh round within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// halt stops the probe and waits for its goroutines.
func (p *prober) halt() {
	p.stopMu.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// check fails t if any answer was wrong.
func (p *prober) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.badN > 0 {
		t.Errorf("the probe got %d bad answers out of %d (first ones):\n  %s", p.badN, p.total.Load(), strings.Join(p.bad, "\n  "))
	}
}

// count returns how many times app answered body.
func (p *prober) count(app, body string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[app][body]
}
