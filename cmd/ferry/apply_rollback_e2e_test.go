package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets/host/api"
)

// switchLosingProxy is a reverse proxy in front of a ferry-host's control
// API that loses the answer to one app's deploy: the PUT reaches the host,
// which deploys the new version and switches to it, but its answer is never
// passed on; the client waits until it gives up. Requests that come while
// the lost PUT is still at the host wait for it, so the client's next look
// at the host always sees the switch.
type switchLosingProxy struct {
	URL string

	mu      stdsync.Mutex
	app     string        // app whose PUT answer is lost, "" for none
	settled chan struct{} // closed once the lost PUT ended at the host
	lost    []api.AppInfo
}

func newSwitchLosingProxy(t *testing.T, ctlURL string) *switchLosingProxy {
	t.Helper()
	up, err := url.Parse(ctlURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &switchLosingProxy{settled: make(chan struct{})}
	close(p.settled)
	rp := httputil.NewSingleHostReverseProxy(up)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		app, settled := p.app, p.settled
		p.mu.Unlock()
		name, isApp := strings.CutPrefix(r.URL.Path, "/v1/apps/")
		if !isApp || r.Method != http.MethodPut || name != app {
			select {
			case <-settled:
			case <-r.Context().Done():
				return
			}
			rp.ServeHTTP(w, r)
			return
		}
		// The lost PUT: sent to the host on a context of its own, so the
		// host finishes it whatever the client does.
		p.mu.Lock()
		p.app, p.settled = "", make(chan struct{})
		settled = p.settled
		p.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		out, _ := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, up.String()+r.URL.Path, bytes.NewReader(body))
		out.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(out)
		if err == nil {
			var ai api.AppInfo
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &ai) == nil {
				p.mu.Lock()
				p.lost = append(p.lost, ai)
				p.mu.Unlock()
			}
		}
		close(settled)
		<-r.Context().Done() // the answer is lost: the client gives up
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// loseNextPut makes the answer of the next PUT of app get lost.
func (p *switchLosingProxy) loseNextPut(app string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.app = app
}

// lostAnswers returns what the host answered to the lost PUTs (only those
// that succeeded at the host).
func (p *switchLosingProxy) lostAnswers() []api.AppInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]api.AppInfo(nil), p.lost...)
}

// TestApplyRollsBackAfterSwitch is the rollback of a version that went
// live, against the real ferry-host binary: the host deploys one app's v2,
// which passes its deploy probe and serves, but the host's answer never
// reaches `ferry apply` within --timeout (a proxy on the control API loses
// it). Apply's rollout policy cannot confirm the new version, so it looks
// at the host, finds the new version live with the old one kept as
// previous, and calls the host's rollback: the app serves v1 again, the
// host keeps v2 as its previous version, and the result says "switched
// back". The other apps of the same apply get v2.
func TestApplyRollsBackAfterSwitch(t *testing.T) {
	w := newE2EWorld(t)
	v1, v2 := e2eWasm(t)
	const sick = "switch-sick"
	names := append(e2eNames("switch-ok", 2), sick)
	proxy := newSwitchLosingProxy(t, w.host.ctlURL)
	w.host.ctlURL = proxy.URL // the spec's endpoint; w.client talks to the host directly

	w.writeSpec(e2eSpec(names, func(string) []byte { return v1 }))
	if code, out, errs := w.apply(); code != 0 {
		t.Fatalf("apply v1: exit %d\n%s\n%s", code, out, errs)
	}
	before := w.digests()

	allowed := map[string][]string{}
	for _, a := range names {
		allowed[a] = []string{bodyV1, bodyV2}
	}
	probe := startProber(t, w.host.appsURL, allowed, 2)
	probe.waitFreshRound(t, 30*time.Second)

	w.writeSpec(e2eSpec(names, func(string) []byte { return v2 }))
	proxy.loseNextPut(sick)
	const timeout = 3 * time.Second
	code, out, errs := w.apply("-o", "json", "--timeout", timeout.String())
	if code != exitError {
		t.Fatalf("apply whose answer is lost: exit %d, want %d\n%s\n%s", code, exitError, out, errs)
	}
	lost := proxy.lostAnswers()
	if len(lost) != 1 || lost[0].Digest == before[sick] || lost[0].Previous != before[sick] {
		t.Fatalf("the host's answers to the lost PUT: %+v; want one switch from %s to v2", lost, before[sick])
	}
	v2Digest := lost[0].Digest

	res := parseApplyJSON(t, out)
	if len(res.Targets) != 1 || len(res.Targets[0].Apps) != len(names) {
		t.Fatalf("apply result: want 1 target with %d apps:\n%s", len(names), out)
	}
	after := w.apps()
	for _, r := range res.Targets[0].Apps {
		if r.App != sick {
			if r.Outcome != "applied" || r.Digest != after[r.App].Digest || r.Digest == before[r.App] {
				t.Errorf("%s: %s %s (host runs %s, ran %s); want applied", r.App, r.Action, r.Outcome, after[r.App].Digest, before[r.App])
			}
			continue
		}
		if r.Outcome != "failed" || r.Digest != v2Digest || !r.RolledBack || r.RolledBackTo != before[sick] ||
			!strings.Contains(r.Detail, "switched back from the failed version") || !strings.Contains(r.Error, "not healthy within "+timeout.String()) {
			t.Errorf("%s: outcome %s digest %s rolled_back %v to %s, detail %q, error %q;\nwant failed, %s switched back to %s, not healthy within %v",
				r.App, r.Outcome, r.Digest, r.RolledBack, r.RolledBackTo, r.Detail, r.Error, v2Digest, before[sick], timeout)
		}
	}
	// The host's own record shows the switch back: v1 serves, v2 is kept
	// as the previous version.
	if a := after[sick]; a.Digest != before[sick] || a.Previous != v2Digest {
		t.Errorf("%s on the host: digest %s previous %s; want %s with previous %s", sick, a.Digest, a.Previous, before[sick], v2Digest)
	}
	if code, body, err := w.getBody(sick); err != nil || code != 200 || body != bodyV1 {
		t.Errorf("%s after the rollback: %d %q %v, want v1", sick, code, body, err)
	}

	probe.waitFreshRound(t, 30*time.Second)
	probe.halt()
	probe.check(t)
	// The new version really went live before apply switched back.
	if probe.count(sick, bodyV2) == 0 || probe.count(sick, bodyV1) == 0 {
		t.Errorf("the probe saw %s answer v1 %d times and v2 %d times; want both (v2 went live, then v1 again)",
			sick, probe.count(sick, bodyV1), probe.count(sick, bodyV2))
	}
	t.Logf("probe: %d requests; %s served v2 %d times before the rollback", probe.total.Load(), sick, probe.count(sick, bodyV2))
}
