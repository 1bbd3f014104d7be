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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// soakApps are the apps the soak deploys to, round-robin.
var soakApps = []string{"soak-a", "soak-b", "soak-c"}

// TestSoak runs the ferry-host binary under bounded load for $FERRY_SOAK
// (a duration, e.g. 10m; `make chaos` sets it) while a new signed version
// of one of three apps is deployed every $FERRY_SOAK_EVERY (default 2s).
// Every few seconds it samples the host's resident memory (VmRSS in
// /proc/PID/status) and its goroutines (go_goroutines on the control API's
// /metrics). After a warm-up (the first tenth), the median of the last
// quarter of the samples must be within 20% of the median of the first
// quarter, for both (goroutines get an absolute slack of 5, for small
// counts). Every probe answer must be 200 with a body of a version that was
// deployed. The samples are written to $FERRY_SOAK_OUT when it is set.
//
// Without FERRY_SOAK the test is skipped: it is the long suite of `make
// chaos`, not part of `make test`.
func TestSoak(t *testing.T) {
	total, err := time.ParseDuration(os.Getenv("FERRY_SOAK"))
	if err != nil || total <= 0 {
		t.Skip("the soak runs only with FERRY_SOAK=DURATION (make chaos sets FERRY_SOAK=10m)")
	}
	every := 2 * time.Second
	if d, err := time.ParseDuration(os.Getenv("FERRY_SOAK_EVERY")); err == nil && d > 0 {
		every = d
	}
	sampleEvery := max(total/120, time.Second)

	bin := soakBuild(t)
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	p := startHost(t, time.Minute, bin, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--trust-key", trustKeyFile(t), "--log-level", "warn")
	pid := p.cmd.Process.Pid
	ctl, err := driver.NewClient(p.ctlURL, testToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// deployed[app] is every version number the app has been given;
	// a probe answer must be one of them.
	var mu sync.Mutex
	deployed := map[string]map[int]bool{}
	put := func(app string, v int) {
		t.Helper()
		ref := soakPublish(t, rc, reg.Addr(), app, v)
		mu.Lock()
		if deployed[app] == nil {
			deployed[app] = map[int]bool{}
		}
		deployed[app][v] = true
		mu.Unlock()
		_, digest, _ := strings.Cut(ref, "@")
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := ctl.Put(cctx, targets.DesiredApp{Name: app, Ref: ref, Digest: digest}); err != nil {
			t.Fatalf("deploy %s v%d: %v", app, v, err)
		}
	}
	for _, a := range soakApps {
		put(a, 0)
	}

	// Bounded load: 4 clients, each at most one request per 5 ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reqs, bad atomic.Int64
	var firstBad atomic.Value
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				app := soakApps[n%len(soakApps)]
				reqs.Add(1)
				if msg := soakProbe(client, p.appsURL, app, func(v int) bool {
					mu.Lock()
					defer mu.Unlock()
					return deployed[app][v]
				}); msg != "" {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, msg)
				}
			}
		}()
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	type sample struct {
		at         time.Duration
		rssKiB     int64
		goroutines int64
	}
	var samples []sample
	start := time.Now()
	deployTick, sampleTick := time.NewTicker(every), time.NewTicker(sampleEvery)
	defer deployTick.Stop()
	defer sampleTick.Stop()
	deploys := 0
	for time.Since(start) < total {
		select {
		case <-deployTick.C:
			deploys++
			put(soakApps[deploys%len(soakApps)], deploys)
		case <-sampleTick.C:
			rss, err := soakRSS(pid)
			if err != nil {
				t.Fatal(err)
			}
			g, err := soakGoroutines(p.ctlURL)
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, sample{time.Since(start), rss, g})
		case err := <-p.done:
			t.Fatalf("ferry-host exited during the soak: %v\n%s", err, p.stderr.String())
		}
	}
	close(stop)
	wg.Wait()

	if out := os.Getenv("FERRY_SOAK_OUT"); out != "" {
		var b strings.Builder
		b.WriteString("seconds\trss_kib\tgoroutines\n")
		for _, s := range samples {
			fmt.Fprintf(&b, "%.0f\t%d\t%d\n", s.at.Seconds(), s.rssKiB, s.goroutines)
		}
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d probe answers were wrong; first: %v", n, reqs.Load(), firstBad.Load())
	}

	// Drop the warm-up, then compare the first and last quarters.
	warm := samples[len(samples)/10:]
	if len(warm) < 8 {
		t.Fatalf("only %d samples after the warm-up; run longer", len(warm))
	}
	q := len(warm) / 4
	med := func(ss []sample, f func(sample) int64) int64 {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rss := func(s sample) int64 { return s.rssKiB }
	gor := func(s sample) int64 { return s.goroutines }
	rss1, rss4 := med(warm[:q], rss), med(warm[len(warm)-q:], rss)
	g1, g4 := med(warm[:q], gor), med(warm[len(warm)-q:], gor)
	peak := slices.MaxFunc(samples, func(a, b sample) int { return int(a.rssKiB - b.rssKiB) })
	t.Logf("soak %v: %d deploys, %d requests (%d wrong), %d samples; RSS median first quarter %d KiB, last quarter %d KiB (%+.1f%%), peak %d KiB; goroutines %d → %d",
		total, deploys, reqs.Load(), bad.Load(), len(samples), rss1, rss4, 100*float64(rss4-rss1)/float64(rss1), peak.rssKiB, g1, g4)
	if float64(rss4) > 1.2*float64(rss1) {
		t.Errorf("RSS grew: median %d KiB in the first quarter after warm-up, %d KiB in the last (more than 20%%)", rss1, rss4)
	}
	if float64(g4) > 1.2*float64(g1)+5 {
		t.Errorf("goroutines grew: median %d in the first quarter after warm-up, %d in the last", g1, g4)
	}
	if deploys < int(total/every)/2 {
		t.Errorf("only %d deploys in %v (one every %v was asked)", deploys, total, every)
	}
}

// soakBuild builds ferry-host for this machine with the same flags as the
// end-to-end tests of cmd/ferry (which `make chaos` runs first), so that
// the build is a cache hit there, and returns its path.
func soakBuild(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ferry-host")
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", out, "./cmd/ferry-host")
	cmd.Dir = testenv.RepoRoot(t)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ferry-host: %v\n%s", err, msg)
	}
	return out
}

// soakBody is what version v of app answers: the hello-wat greeting slot
// (24 bytes) holds "APP vN".
func soakBody(app string, v int) string { return fmt.Sprintf("%-24s\n", fmt.Sprintf("%s v%d", app, v)) }

// soakPublish pushes version v of app (the hello-wat module answering
// soakBody) to the registry at addr, signs it and returns REPO@DIGEST.
func soakPublish(t testing.TB, rc *registry.Client, addr, app string, v int) string {
	t.Helper()
	const from = "Hello from WAT on ferry!"
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	wasm = bytes.Replace(wasm, []byte(from), []byte(strings.TrimSuffix(soakBody(app, v), "\n")), 1)
	a := deploy.App{
		Name:  app,
		Hosts: []string{app + ".localhost"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Limits: deploy.Limits{MemoryBytes: 1 << 20, Timeout: deploy.Duration(2 * time.Second)},
			Health: &deploy.Health{Path: "/healthz"},
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := rc.PushApp(ctx, addr+"/soak/"+app, a, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := signingKey(t)
	if _, err := signer.Sign(ctx, res.Ref, priv, signer.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	return res.Ref
}

// soakProbe requests app once and returns "" when it answered 200 with the
// body of a version ok accepts, else what was wrong.
func soakProbe(c *http.Client, appsURL, app string, ok func(v int) bool) string {
	req, _ := http.NewRequest(http.MethodGet, appsURL+"/", nil)
	req.Host = app + ".localhost"
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "reading: " + err.Error()
	}
	var v int
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s: %d %q", app, resp.StatusCode, b)
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), app+" v%d", &v); err != nil || string(b) != soakBody(app, v) || !ok(v) {
		return fmt.Sprintf("%s: body %q is no deployed version", app, b)
	}
	return ""
}

// soakRSS returns VmRSS of process pid in KiB.
func soakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// soakGoroutines reads go_goroutines from the host's /metrics.
func soakGoroutines(ctlURL string) (int64, error) {
	req, _ := http.NewRequest(http.MethodGet, ctlURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics")
}
