package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-wasm/ferry/internal/browsertest"
	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
)

// browser is headless Chromium with the dashboard's login.
type browser struct{ *browsertest.Browser }

func newBrowser(t *testing.T) *browser { return &browser{browsertest.New(t)} }

// login logs in at base with token and waits for the apps page.
func (b *browser) login(base, token string) {
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login")))
	b.Wait("the apps matrix after login", `document.querySelector('#matrix') !== null`, time.Minute)
}

// TestDashboardE2EUp drives the dashboard of a real `ferry up examples`
// (registry, host, agent; a real git repository) from headless Chromium:
// no session sees only the login page, a wrong token is refused, the right
// one logs in; every example shows healthy; a commit shows up on the open
// page without a reload; an app whose health probe fails shows why; a
// rollback clicked on the page pins the previous version, which the
// status API and the host then report.
func TestDashboardE2EUp(t *testing.T) {
	clone := cloneRepo(t)
	head := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "HEAD"))
	viewerFile := filepath.Join(t.TempDir(), "viewer.token")
	const viewerToken = "viewer-token-for-the-e2e-test"
	if err := os.WriteFile(viewerFile, []byte(viewerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// ferry up's notification flags, as ferry agent's.
	secret := []byte("a-notify-secret-of-the-e2e-test")
	rc := newNotifyE2EReceiver(t, secret)
	secretFile := filepath.Join(t.TempDir(), "notify.secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	up := startUp(t, "--interval", "1h", "--viewer-token-file", viewerFile, "--notify-webhook", rc.srv.URL+"/hook", "--notify-secret-file", secretFile,
		filepath.Join(clone, "examples"))
	if up.dashboard == "" || !strings.HasSuffix(up.dashboard, "/") {
		t.Fatalf("ferry up printed no dashboard URL (got %q)", up.dashboard)
	}
	base := strings.TrimSuffix(up.dashboard, "/")
	st := up.waitRound(t, head, 5*time.Minute) // Go examples build on the way
	v1 := ""
	for _, a := range st.Apps {
		if a.Name == "hello-wat" {
			v1 = a.Desired
		}
	}
	if v1 == "" || len(st.Apps) < 4 {
		t.Fatalf("ferry up examples: apps %+v", st.Apps)
	}
	b := newBrowser(t)

	// No session: the dashboard is only the login page.
	b.Run(time.Minute, chromedp.Navigate(up.dashboard))
	b.Wait("the login page", `location.pathname === '/ui/login' && document.querySelector('#token') !== null && document.querySelector('#matrix') === null`, time.Minute)
	b.Shot("login")
	b.Run(time.Minute, chromedp.SetValue(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login")))
	b.Wait("the refusal of a wrong token", `(document.querySelector('#login-error') || {textContent: ''}).textContent.includes('not valid') && location.pathname === '/ui/login'`, time.Minute)
	b.Shot("login-refused")
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/history"))
	b.Wait("the login page again", `location.pathname === '/ui/login'`, time.Minute)

	b.login(base, up.agent.Token)
	// Every example is healthy on the local host.
	healthy := fmt.Sprintf(`document.querySelectorAll('#matrix tr[data-app]').length === %d && document.querySelector('#count-unhealthy').textContent === '0' &&
		[...document.querySelectorAll('#matrix tr[data-app]')].every(r => r.querySelector('td[data-target="local"] [data-phase="ready"]') !== null)`, len(st.Apps))
	b.Wait("every example healthy", healthy, 2*time.Minute)
	b.Wait("the live connection", `document.body.dataset.live === '1'`, time.Minute)
	b.Shot("apps")

	// A commit shows up live: the marker set on this page survives.
	b.JS(`window.__ferryMarker = 'no-reload'`)
	commitGreeting(t, filepath.Join(clone, "examples", "hello-wat", "hello.wasm"), clone, "Hello from the dashboard")
	c2 := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "HEAD"))
	st2 := up.waitRound(t, c2, 2*time.Minute)
	v2 := ""
	for _, a := range st2.Apps {
		if a.Name == "hello-wat" {
			v2 = a.Desired
		}
	}
	if v2 == "" || v2 == v1 {
		t.Fatalf("the commit did not change hello-wat's digest (%s → %s)", v1, v2)
	}
	b.Wait("the new commit and digest, without a reload",
		fmt.Sprintf(`window.__ferryMarker === 'no-reload' && document.querySelector('#last-commit').textContent === %s &&
			document.querySelector('#app-hello-wat').textContent.includes(%s) && Number(document.body.dataset.refreshes) > 0`,
			browsertest.String(c2[:8]), browsertest.String(short12(v2))), time.Minute)

	// An app whose new version fails its health probe shows the reason:
	// flaky v1 serves, then a version whose /healthz turns 500 is
	// deployed, and the host rolls it back by itself.
	flaky, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flaky-health.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(clone, "examples", "flaky")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(hcl string, wasm []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "flaky.wasm"), wasm, 0o644); err != nil {
			t.Fatal(err)
		}
		gitCmd(t, clone, "add", "examples/flaky")
	}
	write(agentE2EAppHCL("flaky"), agentE2EWasm(t, "flaky v1"))
	gitCmd(t, clone, "commit", "-q", "-m", "flaky v1")
	b.Wait("the flaky app serving, live", `window.__ferryMarker === 'no-reload' && document.querySelector('#app-flaky td[data-target="local"] [data-phase="ready"]') !== null`, 2*time.Minute)
	write(agentE2EFlakyHCL("flaky"), flaky)
	gitCmd(t, clone, "commit", "-q", "-m", "flaky v2: its health probe fails")
	c3 := strings.TrimSpace(gitCmd(t, clone, "rev-parse", "HEAD"))
	up.waitRound(t, c3, 2*time.Minute)
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/apps/flaky"))
	// The host finds the failing probe within the version's bake and rolls
	// it back; the agent sees that in its next round, which the page's
	// "Sync now" starts (the poll interval is an hour here).
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if b.WaitErr(`document.querySelector('#app-errors').textContent.includes('answered 500')`, 10*time.Second) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not show why the flaky app is unhealthy within 3m:\n%s", b.Text())
		}
		b.Click("Sync now", "#sync-now", time.Minute)
	}
	b.Shot("app-unhealthy")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if p, ok := rc.find(notify.KindRollback, "flaky"); ok {
			if p.By != notify.ByHost || !strings.Contains(p.Reason, "answered 500") {
				t.Errorf("ferry up's rollback notification: %+v", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry up --notify-webhook delivered no rollback of flaky within 1m (refused: %v)", rc.bad)
		}
	}

	// A rollback clicked on the page takes effect.
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/apps/hello-wat"))
	b.Click("the rollback button", "#rollback", time.Minute)
	b.Wait("the rollback's confirmation", `(document.querySelector('#flash') || {textContent: ''}).textContent.includes('pinned at')`, time.Minute)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := up.agent.Status(context.Background())
		if err == nil && pinnedAt(s, "hello-wat") == v1 && runsOn(s, "hello-wat", "local") == v1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rollback from the page the status API says pins %+v, hello-wat on local %s; want %s (err %v)", s.Pins, runsOn(s, "hello-wat", "local"), v1, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitBody(t, up.apps+"/", "hello-wat.localhost", "Hello from WAT on ferry!", time.Minute)
	b.Wait("the pin on the app page, and the version it holds on the host", fmt.Sprintf(`document.querySelector('#pinned') !== null && document.querySelector('#unpin') !== null &&
		document.querySelector('#app-targets tr[data-target="local"]').textContent.includes(%s)`, browsertest.String(short12(v1))), time.Minute)
	b.Shot("app")

	b.Run(time.Minute, chromedp.Navigate(base+"/ui/targets"))
	b.Wait("the local target reachable", `document.querySelector('#targets tr[data-target="local"] .reach').textContent === 'reachable'`, time.Minute)
	b.Shot("targets")
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/history"))
	b.Wait("the commit's author and message in the history", `document.querySelector('#timeline').textContent.includes('greeting: Hello from the dashboard')`, time.Minute)
	b.Shot("history")

	// An invalid spec shows its error with file:line, live.
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/"))
	b.Wait("the apps page", `document.body.dataset.live === '1'`, time.Minute)
	b.JS(`window.__ferryMarker = 'no-reload'`)
	broken := filepath.Join(clone, "examples", "broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "ferry.hcl"), []byte("app \"broken\" {\n  component \"web\" {\n    wasm = 42\n  }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, clone, "add", "examples/broken")
	gitCmd(t, clone, "commit", "-q", "-m", "broken: an unterminated block")
	b.Wait("the spec error with file:line, without a reload", `window.__ferryMarker === 'no-reload' &&
		[...document.querySelectorAll('.spec-error')].some(e => /examples\/broken\/ferry\.hcl:\d+:\d+: error/.test(e.textContent))`, 2*time.Minute)
	b.Shot("spec-error")

	// A viewer (ferry up --viewer-token-file) reads but cannot act.
	b.Click("Log out", "header form button", time.Minute)
	b.Wait("the login page after logging out", `location.pathname === '/ui/login'`, time.Minute)
	b.login(base, viewerToken)
	b.Run(time.Minute, chromedp.Navigate(base+"/ui/apps/hello-wat"))
	b.Wait("the app page without actions for a viewer", `document.querySelector('#role').textContent === 'viewer' && document.querySelector('#app-targets') !== null &&
		document.querySelector('#rollback') === null && document.querySelector('#sync-now') === null`, time.Minute)
	code, err := browsertest.Eval[float64](b.Browser, `(async () => {
		const csrf = document.querySelector('header form input[name=csrf]').value;
		const r = await fetch('/ui/apps/hello-wat/unpin', {method: 'POST', body: new URLSearchParams({csrf})});
		return r.status; })()`)
	if err != nil || code != 403 {
		t.Errorf("a viewer's unpin from the page = %v (%v), want 403", code, err)
	}
	if s, err := up.agent.Status(context.Background()); err != nil || pinnedAt(s, "hello-wat") != v1 {
		t.Errorf("after a viewer's unpin the pin is %q (%v), want it kept at %s", pinnedAt(s, "hello-wat"), err, v1)
	}
}

// TestDashboardE2EFleetRollout watches a real fleet rollout on the
// dashboard of `ferry agent` (a real git server, registry and two real
// ferry-host device processes): the open rollout page shows the waves
// progressing to completed as they happen, without a reload.
func TestDashboardE2EFleetRollout(t *testing.T) {
	_, hostBin := e2eBinaries(t)
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	w.Write("ferry.hcl", fleetE2ESpec(reg.Addr+"/fleet", agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("alpha v1")
	w.Push()

	ctx, cancel := context.WithCancel(context.Background())
	out, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1s", "--device-listen", "127.0.0.1:0")
	go func() { done <- run(ctx, args, strings.NewReader(""), out, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("ferry agent did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("ferry agent log (tail):\n%s", agentE2ETail(stderr.String(), 60))
		}
	})
	var agentURL, deviceAPI string
	for deadline := time.Now().Add(30 * time.Second); agentURL == "" || deviceAPI == ""; time.Sleep(20 * time.Millisecond) {
		if m := agentE2EAPIRE.FindStringSubmatch(out.String()); m != nil {
			agentURL = m[1]
		}
		if m := fleetE2EDeviceAPIRE.FindStringSubmatch(out.String()); m != nil {
			deviceAPI = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry agent printed no addresses:\n%s\n%s", out.String(), stderr.String())
		}
	}
	if !strings.Contains(out.String(), "dashboard "+agentURL+"/") {
		t.Errorf("ferry agent does not print its dashboard URL:\n%s", out.String())
	}
	cli := func(args ...string) string {
		t.Helper()
		var o, eb testenv.Buffer
		if code := run(context.Background(), append(args, "--agent", agentURL), strings.NewReader(""), &o, &eb); code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), eb.String())
		}
		return o.String()
	}
	var tok struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(cli("fleet", "token", "create", "--ttl", "1h", "--uses", "2", "--labels", "ring=edge", "-o", "json")), &tok); err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, name := range []string{"edge-a", "edge-b"} {
		cmd := exec.Command(hostBin, "device", "--server", deviceAPI, "--enroll-token", tok.Secret, "--labels", "site=lab", "--name", name,
			"--data-dir", filepath.Join(t.TempDir(), name), "--trust-key", e.pubPath, "--listen", "127.0.0.1:0", "--poll-wait", "5s", "--heartbeat", "1s")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(t.TempDir(), "docker"))
		_, m := testenv.StartProcess(t, cmd, fleetE2EDeviceRE, 2*time.Minute)
		devs = append(devs, m[1])
	}
	for _, d := range devs {
		agentE2EWaitServing(t, d, "alpha", "alpha v1", 2*time.Minute)
	}
	rollout := func() controller.Rollout {
		t.Helper()
		var ros []controller.Rollout
		if err := json.Unmarshal([]byte(cli("fleet", "rollout", "status", "edge", "-o", "json")), &ros); err != nil || len(ros) != 1 {
			t.Fatalf("rollout status: %v %+v", err, ros)
		}
		return ros[0]
	}
	for deadline := time.Now().Add(2 * time.Minute); rollout().State.Outcome != fleet.OutcomeCompleted; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the v1 rollout did not complete within 2m")
		}
	}
	v1 := rollout().State.To

	b := newBrowser(t)
	b.login(agentURL, agentE2EAPIToken)
	b.Run(time.Minute, chromedp.Navigate(agentURL+"/ui/fleet"))
	sel := `document.querySelector('#rollout-edge-alpha')`
	b.Wait("the completed v1 rollout", sel+` !== null && `+sel+`.dataset.outcome === 'completed'`, time.Minute)
	b.Wait("the live connection", `document.body.dataset.live === '1'`, time.Minute)
	// Record what the page shows, as it changes, from the page itself.
	b.JS(`window.__ferryMarker = 'no-reload'; window.__seen = [];
		setInterval(() => { const s = document.querySelector('#rollout-edge-alpha'); if (!s) return;
			const v = s.dataset.wave + ':' + s.dataset.outcome + ':' + s.querySelector('.n-healthy').textContent;
			if (window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v); }, 50); true`)

	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	w.Commit("alpha v2")
	w.Push()
	b.Wait("wave 1 of the v2 rollout", `window.__seen.some(v => v.startsWith('1:running') || v.startsWith('1:soaking'))`, 2*time.Minute)
	// Wave 1 soaks for 10 s: catch it for the screenshot, with its
	// countdown (not a failure if the machine was too slow to).
	if b.WaitErr(sel+`.dataset.outcome === 'soaking' && `+sel+`.querySelector('.countdown') !== null`, time.Minute) != nil {
		t.Log("did not catch wave 1 soaking for the screenshot")
	}
	b.Shot("fleet")
	b.Wait("wave 2 of the v2 rollout", `window.__seen.some(v => v.startsWith('2:'))`, 2*time.Minute)
	b.Wait("the v2 rollout completed, without a reload", `window.__ferryMarker === 'no-reload' && window.__seen[window.__seen.length - 1].startsWith('2:completed')`, 2*time.Minute)
	seen, err := browsertest.Eval[[]string](b.Browser, `window.__seen`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the rollout page showed (wave:outcome:healthy): %v", seen)
	if ro := rollout(); ro.State.To == v1 || ro.State.Outcome != fleet.OutcomeCompleted {
		t.Fatalf("the agent's rollout: %+v", ro.State)
	}
	for _, d := range devs {
		agentE2EWaitServing(t, d, "alpha", "alpha v2", time.Minute)
	}
	b.Shot("fleet-completed")

	b.Run(time.Minute, chromedp.Navigate(agentURL+"/ui/fleet/devices?selector=ring%3Dedge"))
	b.Wait("both devices", `document.querySelectorAll('#devices tr[data-device]').length === 2`, time.Minute)
	b.Shot("devices")
	b.Run(time.Minute, chromedp.Navigate(agentURL+"/ui/history"))
	b.Wait("the rollout's commit in the history", `document.querySelector('#timeline').textContent.includes('alpha v2')`, time.Minute)
	b.Run(time.Minute, chromedp.Navigate(agentURL+"/ui/fleet/devices?selector=ring%3Dnowhere"))
	b.Wait("no device for a selector nobody matches", `document.querySelectorAll('#devices tr[data-device]').length === 0`, time.Minute)
}

func short12(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func pinnedAt(s *agent.Status, app string) string {
	for _, p := range s.Pins {
		if p.App == app {
			return p.Digest
		}
	}
	return ""
}

func runsOn(s *agent.Status, app, target string) string {
	for _, a := range s.Apps {
		if a.Name == app {
			for _, t := range a.Targets {
				if t.Target == target {
					return t.Digest
				}
			}
		}
	}
	return ""
}
