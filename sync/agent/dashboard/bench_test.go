package dashboard

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferry-wasm/ferry/internal/browsertest"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// fakeFleet is an in-memory fleet of n devices with one rollout, for the
// scale benchmark (the e2e test in cmd/ferry runs a real hub).
type fakeFleet struct {
	devices []server.Device
	ro      controller.Rollout
	mu      sync.Mutex
	acts    []string
}

func newFakeFleet(n int) *fakeFleet {
	now := time.Now()
	f := &fakeFleet{}
	st := &fleet.State{Version: fleet.StateVersion, App: "app-0000", Target: "edge", From: "sha256:" + fmt.Sprintf("%064d", 1),
		To: "sha256:" + fmt.Sprintf("%064d", 2), Started: now.Add(-time.Minute), Outcome: fleet.OutcomeSoaking, Wave: 1, GateSince: now, Devices: map[string]fleet.Progress{}}
	for i := range n {
		id := fmt.Sprintf("dev-%05d", i)
		ring := []string{"canary", "edge", "core"}[i%3]
		d := server.Device{ID: id, Name: "board-" + strconv.Itoa(i), Labels: map[string]string{"ring": ring, "site": "s" + strconv.Itoa(i%40)},
			LastSeen: now, Status: &api.StatusReport{Apps: []api.AppStatus{{Name: "app-0000", Digest: st.To, Phase: "ready", Healthy: i%97 != 0}}}}
		f.devices = append(f.devices, d)
		if i%2 == 0 {
			st.Devices[id] = fleet.Progress{Status: fleet.StatusHealthy, Since: now, Started: now, Wave: min(i*4/n, 3)}
		}
	}
	f.ro = controller.Rollout{App: "app-0000", Target: "edge", State: st, Summary: st.Summary(),
		Last: &fleet.Decision{Outcome: fleet.OutcomeSoaking, Wave: 1, Waves: 4, Gate: fleet.Gate{Wave: 1, Devices: n / 4, Healthy: n / 4, Need: 0.95, Since: now, Soak: 5 * time.Minute}}}
	return f
}

func (f *fakeFleet) Rollouts() ([]controller.Rollout, error) { return []controller.Rollout{f.ro}, nil }
func (f *fakeFleet) Devices(match func(map[string]string) bool) []server.Device {
	var out []server.Device
	for _, d := range f.devices {
		if match == nil || match(d.Labels) {
			out = append(out, d)
		}
	}
	return out
}
func (f *fakeFleet) act(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, s)
	return nil
}
func (f *fakeFleet) Pause(t, a string) error    { return f.act("pause " + t + "/" + a) }
func (f *fakeFleet) Resume(t, a string) error   { return f.act("resume " + t + "/" + a) }
func (f *fakeFleet) Abort(t, a, r string) error { return f.act("abort " + t + "/" + a + ": " + r) }

func scaleStatus(apps int, digest string) agent.Status {
	st := agent.Status{Targets: []agent.TargetStatus{{Name: "local", Reachable: true}, {Name: "cluster", Reachable: true}, {Name: "edge", Reachable: true}}}
	for i := range apps {
		d := digest
		if i > 0 {
			d = "sha256:" + fmt.Sprintf("%064x", i)
		}
		a := agent.AppStatus{Name: fmt.Sprintf("app-%04d", i), Desired: d}
		for _, t := range st.Targets {
			a.Targets = append(a.Targets, agent.AppTargetStatus{Target: t.Name, Digest: d, Healthy: true, Phase: "ready", Status: "serving", Owner: "git+https://git.example/acme/apps.git#deploy/" + t.Name})
		}
		st.Apps = append(st.Apps, a)
	}
	return st
}

// BenchmarkDashboardScale measures the dashboard in real headless
// Chromium over loopback with 1,000 apps on 3 targets and 10,000 devices
// (the data is in memory: the agent's status and a fleet are fakes): the
// first render of the apps matrix and of the device list (navigation to
// the page's DOM ready, as the test sees it), and how long an event takes
// to show (from Publish to the page's DOM holding the new digest, by the
// page's own clock).
func BenchmarkDashboardScale(b *testing.B) {
	const apps, devices, updates = 1000, 10000, 20
	src := &fakeSource{status: scaleStatus(apps, "sha256:"+fmt.Sprintf("%064x", 0))}
	d, err := New(Options{Source: src, Fleet: newFakeFleet(devices), OperatorToken: opToken})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	defer d.Close()
	br := browsertest.New(b)
	br.Run(time.Minute, chromedp.Navigate(srv.URL+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SetValue(chromedp.CSS("#token"), opToken), chromedp.Click(chromedp.CSS("#login")))
	br.Wait("the apps page", `document.querySelector('#matrix') !== null`, time.Minute)

	render := func(path, ready string) time.Duration {
		start := time.Now()
		br.Run(time.Minute, chromedp.Navigate(srv.URL+path))
		br.Wait(path, `document.readyState === 'complete' && `+ready, time.Minute)
		return time.Since(start)
	}
	var appsR, devR, fleetR, upd []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		appsR = append(appsR, render("/ui/", `document.querySelectorAll('#matrix tr[data-app]').length === 50`))
		devR = append(devR, render("/ui/fleet/devices", `document.querySelectorAll('#devices tr[data-device]').length === 50`))
		fleetR = append(fleetR, render("/ui/fleet", `document.querySelector('#rollout-edge-app-0000') !== null`))
		render("/ui/", `document.body.dataset.live === '1'`)
		for i := range updates {
			digest := fmt.Sprintf("sha256:%012x%052d", n*updates+i+1, 0)
			src.mu.Lock()
			src.status = scaleStatus(apps, digest)
			src.mu.Unlock()
			sent := time.Now()
			src.bus.Publish(agent.Event{Kind: agent.EventAppChanged, App: "app-0000", Digest: digest})
			br.Wait("the update", fmt.Sprintf(`document.querySelector('#app-app-0000').textContent.includes(%s)`, browsertest.String(digest[:19])), time.Minute)
			at, err := browsertest.Eval[string](br, `document.body.dataset.updatedAt`)
			if err != nil {
				b.Fatal(err)
			}
			ms, _ := strconv.ParseInt(at, 10, 64)
			upd = append(upd, time.UnixMilli(ms).Sub(sent))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	p := func(ds []time.Duration, q float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return ms(s[min(len(s)-1, int(q*float64(len(s))))])
	}
	b.ReportMetric(p(appsR, 1), "apps-render-ms-max")
	b.ReportMetric(p(devR, 1), "devices-render-ms-max")
	b.ReportMetric(p(fleetR, 1), "fleet-render-ms-max")
	b.ReportMetric(p(upd, 0.5), "update-ms-p50")
	b.ReportMetric(p(upd, 1), "update-ms-max")
}
