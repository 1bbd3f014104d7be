package controller

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

const (
	app       = "web"
	secretVal = "s3cret-value-42"
)

func digestOf(s string) string {
	return "sha256:" + strings.Repeat(s, 64)[:64]
}

var (
	v1  = digestOf("1")
	v2  = digestOf("2")
	bad = digestOf("b")
)

func want(digest string) targets.DesiredApp {
	return targets.DesiredApp{Name: app, Ref: "127.0.0.1:5000/web@" + digest, Digest: digest, Owner: "repo#fleet", Secrets: map[string]string{"token": secretVal}}
}

// simPolicy is four waves (1, 10, 50, 100%) with soak and timeouts small
// enough for a test of seconds; abort past 3% failures once 2% of the n
// devices (20 of 1,000) have reported.
func simPolicy(n int) *spec.FleetTarget {
	return &spec.FleetTarget{Rollout: &spec.Rollout{
		Waves:         []spec.Wave{{Percent: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}},
		HealthGate:    spec.HealthGate{SuccessRatio: 0.96, Soak: 300 * time.Millisecond},
		Abort:         spec.Abort{FailureRatio: 0.03, MinSample: max(n/50, 2)},
		DeviceTimeout: 2 * time.Minute, // generous: a loaded machine must not fail devices
		AutoRollback:  true,
	}}
}

// recorder remembers every digest each device said it ran or tried to run,
// from the status reports passing through the real handler.
type recorder struct {
	mu  sync.Mutex
	ran map[string]map[string]bool
	// last is each device's last reported digest; switches counts the
	// reports that changed it, by device and new digest.
	last     map[string]string
	switches map[string]map[string]int
}

func newRecorder() *recorder {
	return &recorder{ran: map[string]map[string]bool{}, last: map[string]string{}, switches: map[string]map[string]int{}}
}

func (rc *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/status") {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 2<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			var rep api.StatusReport
			if json.Unmarshal(body, &rep) == nil {
				id := strings.Split(r.URL.Path, "/")[3]
				rc.mu.Lock()
				if rc.ran[id] == nil {
					rc.ran[id] = map[string]bool{}
				}
				running := ""
				for _, a := range rep.Apps {
					for _, d := range []string{a.Digest, a.Failed} {
						if d != "" {
							rc.ran[id][d] = true
						}
					}
					if a.Name == app {
						running = a.Digest
					}
				}
				if running != rc.last[id] {
					if rc.switches[id] == nil {
						rc.switches[id] = map[string]int{}
					}
					rc.switches[id][running]++
					rc.last[id] = running
				}
				rc.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	})
}

// running is the digest device id last reported running.
func (rc *recorder) running(id string) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last[id]
}

// switchesTo counts the reports of device id that switched it to digest.
func (rc *recorder) switchesTo(id, digest string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.switches[id][digest]
}

func (rc *recorder) ranDigest(id, digest string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ran[id][digest]
}

// fleetEnv is a real server and controller over loopback HTTP.
type fleetEnv struct {
	t        testing.TB
	srvDir   string
	ctlDir   string
	srv      *server.Server
	ctl      *Controller
	hs       *http.Server
	ln       net.Listener
	addr     string
	url      string
	stop     context.CancelFunc
	done     chan struct{}
	rec      *recorder
	logs     *testenv.Buffer
	policy   *spec.FleetTarget
	secret   string
	client   *http.Client
	stopOnce sync.Once
	// poll is how often waitFor reads the rollout; zero means 20 ms.
	poll time.Duration
}

func newFleetEnv(t testing.TB, policy *spec.FleetTarget, maxConns int) *fleetEnv {
	return newFleetEnvRec(t, policy, maxConns, newRecorder())
}

// newFleetEnvRec is newFleetEnv with rec (nil: none) recording the
// reports.
func newFleetEnvRec(t testing.TB, policy *spec.FleetTarget, maxConns int, rec *recorder) *fleetEnv {
	e := &fleetEnv{t: t, srvDir: t.TempDir(), ctlDir: t.TempDir(), rec: rec, logs: &testenv.Buffer{}, policy: policy}
	e.client = &http.Client{Transport: &http.Transport{MaxIdleConns: maxConns + 16, MaxIdleConnsPerHost: maxConns + 16, IdleConnTimeout: time.Minute}}
	t.Cleanup(e.client.CloseIdleConnections)
	e.start("127.0.0.1:0")
	_, secret, err := e.srv.CreateToken(server.TokenOptions{Labels: map[string]string{"site": "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	e.secret = secret
	return e
}

// start opens a server and a controller over the env's directories and
// serves them on addr.
func (e *fleetEnv) start(addr string) {
	t := e.t
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.Open(e.srvDir, server.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := New(Options{Name: "edge", Fleet: e.policy, Server: srv, Dir: e.ctlDir, Logger: log, Resync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i > 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the old listener's port, freed
	}
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.ctl, e.ln, e.addr, e.url = srv, ctl, ln, ln.Addr().String(), "http://"+ln.Addr().String()
	h := srv.Handler()
	if e.rec != nil {
		h = e.rec.wrap(h)
	}
	e.hs = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go e.hs.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	e.stop, e.done = cancel, make(chan struct{})
	go func() { ctl.Start(ctx); close(e.done) }()
	e.stopOnce = sync.Once{}
	t.Cleanup(e.kill)
}

// kill stops the controller and drops every connection, keeping nothing
// but what is on disk: the in-process stand-in for SIGKILL.
func (e *fleetEnv) kill() {
	e.stopOnce.Do(func() {
		e.stop()
		<-e.done
		e.hs.Close()
	})
}

func (e *fleetEnv) put(d targets.DesiredApp) {
	e.t.Helper()
	res, err := e.ctl.Put(context.Background(), d)
	if err != nil {
		e.t.Fatal(err)
	}
	if !res.Progressing() {
		e.t.Fatalf("Put: phase %q, want progressing", res.Phase)
	}
}

// waitFor polls the rollout until cond holds.
func (e *fleetEnv) waitFor(what string, within time.Duration, cond func(Rollout) bool) Rollout {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := e.ctl.Rollout(app)
		if err == nil && cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %v; last status:\n%s", what, within, r.Summary)
		}
		time.Sleep(cmp.Or(e.poll, 20*time.Millisecond))
	}
}

// simDevice is one simulated device speaking the real protocol.
type simDevice struct {
	ID, Cred string
	// Failing devices report the bad digest unhealthy (and go back to
	// what they ran, as ferry-host does).
	Failing bool

	mu       sync.Mutex
	running  string
	values   map[string]string
	switches map[string]int // how many times the device was told to switch to a digest
}

func (d *simDevice) state() (string, map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running, d.values
}

func (d *simDevice) switchesTo(digest string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.switches[digest]
}

func enroll(t testing.TB, client *http.Client, url, secret, name string) *simDevice {
	body, _ := json.Marshal(api.EnrollRequest{Token: secret, Name: name, Labels: map[string]string{"model": "pi4"}, Info: api.DeviceInfo{Arch: "arm64", OS: "linux"}})
	var er api.EnrollResponse
	for attempt := 0; ; attempt++ {
		resp, err := client.Post(url+api.PathEnroll, "application/json", bytes.NewReader(body))
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
			if resp.StatusCode == 200 {
				err = json.NewDecoder(resp.Body).Decode(&er)
			}
			resp.Body.Close()
		}
		if err == nil {
			break
		}
		if attempt > 20 {
			t.Errorf("enroll %s: %v", name, err)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &simDevice{ID: er.DeviceID, Cred: er.Credential, switches: map[string]int{}}
}

func enrollMany(t testing.TB, client *http.Client, url, secret string, n, from int) []*simDevice {
	devs := make([]*simDevice, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			devs[i] = enroll(t, client, url, secret, fmt.Sprintf("dev-%05d", from+i))
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return devs
}

// run long-polls the desired state, "runs" it and reports, until ctx ends.
// url is read at each request so that the server may move.
func (d *simDevice) run(ctx context.Context, client *http.Client, url func() string) {
	etag := ""
	report := func(version string, failed string) error {
		running, _ := d.state()
		rep := api.StatusReport{DesiredVersion: version, Info: api.DeviceInfo{Version: "sim", Arch: "arm64", OS: "linux"}}
		if running != "" || failed != "" {
			as := api.AppStatus{Name: app, Digest: running, Phase: api.PhaseServing, Healthy: true}
			if failed != "" {
				as.Phase, as.Failed, as.Error = api.PhaseRolledBack, failed, "The new version failed its health probe."
				if running == "" {
					as.Phase, as.Healthy = api.PhaseFailed, false
				}
			}
			rep.Apps = []api.AppStatus{as}
		}
		body, _ := json.Marshal(rep)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url()+fmt.Sprintf(api.PathStatusFmt, d.ID), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+d.Cred)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	pendingReport := true
	version, failed := "", ""
	for ctx.Err() == nil {
		if pendingReport {
			if err := report(version, failed); err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			pendingReport = false
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url()+fmt.Sprintf(api.PathDesiredFmt, d.ID)+"?wait=2s", nil)
		req.Header.Set("Authorization", "Bearer "+d.Cred)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var des api.Desired
		code := resp.StatusCode
		if code == http.StatusOK {
			err = json.NewDecoder(resp.Body).Decode(&des)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if code == http.StatusNotModified {
			continue
		}
		if code != http.StatusOK || err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		etag = resp.Header.Get("ETag")
		version = des.Version
		d.mu.Lock()
		target, vals := "", map[string]string(nil)
		for _, a := range des.Apps {
			if a.Name == app {
				target, vals = a.Digest, a.Values
			}
		}
		if target != d.running {
			d.switches[target]++
			if target == bad && d.Failing {
				failed = target // refuse it, keep what runs
			} else {
				d.running, failed = target, ""
			}
		}
		d.values = vals
		d.mu.Unlock()
		pendingReport = true
	}
}

// inProcessMax is the most simulated devices one test process runs: each
// holds a connection, and the server's end is in the same process, under
// the machine's cap of 20,000 open files. Larger fleets run in child
// processes of the test binary (TestSimDeviceProcess).
const inProcessMax = 4000

// runAll runs devs until ctx ends; wait returns once they stopped. With
// more than inProcessMax devices in the test, they run in child processes
// and url must not move.
func runAll(t testing.TB, ctx context.Context, devs []*simDevice, client *http.Client, url func() string, total int) (wait func()) {
	if total <= inProcessMax {
		var wg sync.WaitGroup
		for _, d := range devs {
			wg.Go(func() { d.run(ctx, client, url) })
		}
		return wg.Wait
	}
	var waits []func()
	for len(devs) > 0 {
		k := min(len(devs), inProcessMax)
		waits = append(waits, startChild(t, ctx, devs[:k], url()))
		devs = devs[k:]
	}
	return func() {
		for _, w := range waits {
			w()
		}
	}
}

// startChild runs devs in a child process of the test binary until ctx
// ends.
func startChild(t testing.TB, ctx context.Context, devs []*simDevice, url string) func() {
	t.Helper()
	data, _ := json.Marshal(devs)
	file := filepath.Join(t.TempDir(), "devices.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimDeviceProcess$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), "FERRY_FLEET_SIM_CHILD="+file, "FERRY_FLEET_SIM_URL="+url)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		stdin.Close() // the child stops when its stdin closes
	}()
	var once sync.Once
	wait := func() {
		once.Do(func() {
			<-ctx.Done()
			timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
			cmd.Wait()
			timer.Stop()
			close(done)
		})
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return wait
}

// TestSimDeviceProcess is the child process of a large simulation: it runs
// the devices of FERRY_FLEET_SIM_CHILD against FERRY_FLEET_SIM_URL until
// its stdin closes. It is skipped otherwise.
func TestSimDeviceProcess(t *testing.T) {
	file := os.Getenv("FERRY_FLEET_SIM_CHILD")
	if file == "" {
		t.Skip("only the child of a large fleet simulation")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var devs []*simDevice
	if err := json.Unmarshal(data, &devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		d.switches = map[string]int{}
	}
	url := os.Getenv("FERRY_FLEET_SIM_URL")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: len(devs) + 16, MaxIdleConnsPerHost: len(devs) + 16}}
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() { d.run(ctx, client, func() string { return url }) })
	}
	wg.Wait()
}

func simSize(t testing.TB) int {
	if s := os.Getenv("FERRY_FLEET_SIM_DEVICES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 {
			t.Fatalf("FERRY_FLEET_SIM_DEVICES=%q: want a number of at least 100", s)
		}
		return n
	}
	return 1000
}

// checkNoSecretsLogged: the logs name no value, token or credential.
func checkNoSecretsLogged(t testing.TB, e *fleetEnv, devs []*simDevice) {
	t.Helper()
	logs := e.logs.String()
	if strings.Contains(logs, secretVal) || strings.Contains(logs, e.secret) {
		t.Error("the logs hold a secret value or the enrollment token")
	}
	for _, d := range devs[:min(len(devs), 50)] {
		if strings.Contains(logs, d.Cred) {
			t.Fatal("the logs hold a device credential")
		}
	}
}

// TestSimRollout: a fleet of simulated devices (FERRY_FLEET_SIM_DEVICES,
// default 1,000) on the real server and controller over loopback. A first
// rollout installs v1 through 4 waves; a second rolls v2 out while 5% more
// devices enroll in the middle of it; every device ends on v2, each was
// told to switch to v2 exactly once, and each got the app's values.
func TestSimRollout(t *testing.T) {
	n := simSize(t)
	joiners := n / 20
	e := newFleetEnv(t, simPolicy(n), n+joiners)
	start := time.Now()
	devs := enrollMany(t, e.client, e.url, e.secret, n, 0)
	t.Logf("%d devices enrolled in %v", n, time.Since(start))
	ctx, cancel := context.WithCancel(context.Background())
	url := func() string { return e.url }
	wait := runAll(t, ctx, devs, e.client, url, n+joiners)
	defer func() { cancel(); wait() }()

	start = time.Now()
	e.put(want(v1))
	r := e.waitFor("v1 completes", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	if r.State.Outcome != fleet.OutcomeCompleted || len(r.State.Devices) != n {
		t.Fatalf("v1: %s", r.Summary)
	}
	t.Logf("v1 to %d devices in 4 waves: %v", n, time.Since(start))

	start = time.Now()
	e.put(want(v2))
	e.waitFor("v2 reaches wave 2", 60*time.Second, func(r Rollout) bool { return r.State.Wave >= 1 || !r.State.Live() })
	late := enrollMany(t, e.client, e.url, e.secret, joiners, n)
	wait2 := runAll(t, ctx, late, e.client, url, n+joiners)
	defer func() { cancel(); wait2() }()
	r = e.waitFor("v2 completes", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	if r.State.Outcome != fleet.OutcomeCompleted || r.State.From != v1 {
		t.Fatalf("v2: %s", r.Summary)
	}
	all := append(devs, late...)
	e.waitFor("every device healthy on v2", 30*time.Second, func(r Rollout) bool { return r.State.Counts().Healthy == len(all) })
	t.Logf("v2 to %d devices (%d joined mid-rollout): %v", len(all), joiners, time.Since(start))
	inProcess := len(all) <= inProcessMax
	for _, d := range all {
		if got := e.rec.running(d.ID); got != v2 {
			t.Fatalf("device %s reports %q, want v2", d.ID, got)
		}
		if s := e.rec.switchesTo(d.ID, v2); s != 1 {
			t.Errorf("device %s switched to v2 %d times, want once", d.ID, s)
		}
		if !inProcess {
			continue
		}
		running, vals := d.state()
		if running != v2 || vals["token"] != secretVal {
			t.Fatalf("device %s runs %q with %d values, want v2 and the app's values", d.ID, running, len(vals))
		}
		if s := d.switchesTo(v2); s != 1 {
			t.Errorf("device %s was told to switch to v2 %d times", d.ID, s)
		}
	}
	obs, err := e.ctl.Observe(context.Background())
	if err != nil || len(obs) != 1 || obs[0].Phase != targets.PhaseReady || obs[0].Digest != v2 || obs[0].Owner != "repo#fleet" {
		t.Errorf("Observe: %+v, %v", obs, err)
	}
	checkNoSecretsLogged(t, e, all)
}

// TestSimAbort: with 5% of the devices failing the bad digest (none of
// them in the 1% canary wave), the rollout aborts in the second wave, the
// first to cross the 3% threshold; every device it started goes back to
// v1, and no device of a later wave was ever told to run the bad digest.
func TestSimAbort(t *testing.T) {
	n := simSize(t)
	policy := simPolicy(n)
	e := newFleetEnv(t, policy, n)
	devs := enrollMany(t, e.client, e.url, e.secret, n, 0)

	// Pick the failing devices from the waves they will be in.
	obs := make([]fleet.Device, len(devs))
	byID := map[string]*simDevice{}
	for i, d := range devs {
		obs[i] = fleet.Device{ID: d.ID}
		byID[d.ID] = d
	}
	asg, err := fleet.Assign(policy.Selector, policy.Rollout, obs)
	if err != nil {
		t.Fatal(err)
	}
	var later []string
	for _, w := range asg.Waves[1:] {
		later = append(later, w...)
	}
	failing := 0
	for i := 0; i < len(later) && failing < n/20; i += 20 {
		byID[later[i]].Failing = true
		failing++
	}
	waveOf := func(id string) int { w, _ := asg.Wave(id); return w }

	ctx, cancel := context.WithCancel(context.Background())
	wait := runAll(t, ctx, devs, e.client, func() string { return e.url }, n)
	defer func() { cancel(); wait() }()
	e.put(want(v1))
	e.waitFor("v1 completes", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })

	start := time.Now()
	e.put(want(bad))
	r := e.waitFor("the bad rollout ends", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	t.Logf("aborted after %v:\n%s", time.Since(start), r.Summary)
	if r.State.Outcome != fleet.OutcomeAborted || r.State.Wave != 1 {
		t.Fatalf("want aborted in wave 2: %s", r.Summary)
	}
	started := r.State.Devices
	if len(started) != len(asg.Waves[0])+len(asg.Waves[1]) {
		t.Errorf("%d devices started, want waves 1 and 2's %d", len(started), len(asg.Waves[0])+len(asg.Waves[1]))
	}
	for id, p := range started {
		if p.Status != fleet.StatusRolledBack || waveOf(id) > 1 {
			t.Errorf("device %s (wave %d): %s, want rolled back", id, waveOf(id)+1, p.Status)
		}
	}
	phase, _ := phaseOf(&rollout{st: r.State, rec: appRecord{}})
	if obs, _ := e.ctl.Observe(context.Background()); len(obs) != 1 || obs[0].Phase != targets.PhaseFailed || phase != targets.PhaseFailed {
		t.Errorf("Observe: %+v, want failed", obs)
	}
	if _, err := e.ctl.Put(context.Background(), want(bad)); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Errorf("Put of the aborted digest again: %v, want ErrAborted", err)
	}
	// Every device runs v1 again, and none outside waves 1-2 ever ran bad.
	deadline := time.Now().Add(30 * time.Second)
	reportedBad := 0
	for _, d := range devs {
		for {
			if e.rec.running(d.ID) == v1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %s (wave %d) reports %q, want v1", d.ID, waveOf(d.ID)+1, e.rec.running(d.ID))
			}
			time.Sleep(20 * time.Millisecond)
		}
		_, wasStarted := started[d.ID]
		if !wasStarted && (e.rec.ranDigest(d.ID, bad) || d.switchesTo(bad) > 0) {
			t.Errorf("device %s of wave %d, never started, was told to run the bad digest", d.ID, waveOf(d.ID)+1)
		}
		if wasStarted && e.rec.ranDigest(d.ID, bad) {
			// (A started device may be rolled back before it fetched the
			// bad digest at all: its desired state is v1's again.)
			reportedBad++
		}
	}
	if reportedBad == 0 {
		t.Error("no started device ever reported the bad digest")
	}
	checkNoSecretsLogged(t, e, devs)
}

// TestRestartResumes: the controller and server are killed mid-rollout
// (nothing is flushed: only what they wrote as they went is on disk) and
// new ones over the same directories, on the same address, finish it: every
// device is told to switch to v2 exactly once, and all end on it.
func TestRestartResumes(t *testing.T) {
	n := 300
	policy := simPolicy(n)
	policy.Rollout.HealthGate.Soak = 500 * time.Millisecond
	e := newFleetEnv(t, policy, n)
	devs := enrollMany(t, e.client, e.url, e.secret, n, 0)
	var cur atomic.Value
	cur.Store(e.url)
	ctx, cancel := context.WithCancel(context.Background())
	wait := runAll(t, ctx, devs, e.client, func() string { return cur.Load().(string) }, n)
	defer func() { cancel(); wait() }()
	e.put(want(v1))
	e.waitFor("v1 completes", 60*time.Second, func(r Rollout) bool { return !r.State.Live() })
	e.put(want(v2))
	before := e.waitFor("v2 in wave 3", 60*time.Second, func(r Rollout) bool { return r.State.Wave >= 2 })

	e.kill()
	e.client.CloseIdleConnections()
	time.Sleep(300 * time.Millisecond) // devices find the server gone
	e.start(e.addr)
	cur.Store(e.url)
	after, err := e.ctl.Rollout(app)
	if err != nil || after.State.To != v2 || len(after.State.Devices) < len(before.State.Devices) {
		t.Fatalf("after restart: %v %+v", err, after.Summary)
	}
	r := e.waitFor("v2 completes after the restart", 60*time.Second, func(r Rollout) bool {
		return !r.State.Live() && r.State.Counts().Healthy == n
	})
	if r.State.Outcome != fleet.OutcomeCompleted {
		t.Fatal(r.Summary)
	}
	for _, d := range devs {
		running, _ := d.state()
		if running != v2 || d.switchesTo(v2) != 1 {
			t.Errorf("device %s runs %q, told to switch to v2 %d times; want v2, once", d.ID, running, d.switchesTo(v2))
		}
	}
	for _, f := range []string{filepath.Join(e.ctlDir, "apps", app, "state.json"), filepath.Join(e.ctlDir, "apps", app, "app.json")} {
		if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
}
