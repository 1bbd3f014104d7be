package dashboard

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/targets"
)

func TestEventsStream(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.login(c, viewerToken)
	req, _ := http.NewRequest("GET", f.srv.URL+"/ui/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events = %d %s", resp.StatusCode, ct)
	}
	for deadline := time.Now().Add(10 * time.Second); f.src.bus.Subscribers() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not subscribe")
		}
	}
	f.src.bus.Publish(agent.Event{Kind: agent.EventAppChanged, App: "web", Digest: "sha256:bbbb"})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got []string
	for len(got) < 2 || !strings.HasPrefix(got[len(got)-1], "data: ") {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ") {
				got = append(got, l)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event on the stream; got %q", got)
		}
	}
	if got[0] != "event: update" || !strings.Contains(got[1], `"kind":"app.changed"`) || !strings.Contains(got[1], `"digest":"sha256:bbbb"`) {
		t.Fatalf("stream %q", got)
	}
	// Close ends the stream (a server shutting down is not held open).
	f.d.Close()
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				if n := f.src.bus.Subscribers(); n != 0 {
					t.Errorf("%d subscriptions left after the stream ended", n)
				}
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stream did not end on Close")
		}
	}
}

func TestFragmentAndEscaping(t *testing.T) {
	f := newFixture(t)
	f.src.status.Apps = append(f.src.status.Apps, agent.AppStatus{Name: `<script>alert(1)</script>`, Error: `<img src=x onerror=alert(1)>`})
	c := f.client()
	f.login(c, opToken)
	_, page, h := f.do(c, "GET", "/ui/", nil)
	if !strings.Contains(page, "<html") || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("full page lacks the layout or the CSP")
	}
	if strings.Contains(page, "<script>alert(1)") || strings.Contains(page, "<img src=x") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("hostile names are not escaped:\n%s", page)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/ui/", nil)
	req.Header.Set("X-Ferry-Fragment", "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	if strings.Contains(b.String(), "<html") || !strings.Contains(b.String(), `id="matrix"`) {
		t.Fatalf("fragment:\n%s", b.String())
	}
}

func TestAppsFiltersAndPages(t *testing.T) {
	f := newFixture(t)
	f.src.status.Apps = nil
	for i := range 120 {
		a := agent.AppStatus{Name: fmt.Sprintf("app-%03d", i), Desired: "sha256:aa"}
		ts := agent.AppTargetStatus{Target: "local", Digest: "sha256:aa", Healthy: i%10 != 0, Phase: "ready"}
		if i%10 == 0 {
			ts.Phase, ts.Message = "degraded", "GET /healthz answered 500"
		}
		if i == 7 {
			a.PinnedTo = "sha256:99"
		}
		if i == 13 { // healthy again, but on the version its target rolled back to
			ts.RolledBack = &targets.Rollback{From: "sha256:bb", To: "sha256:aa"}
		}
		a.Targets = []agent.AppTargetStatus{ts}
		f.src.status.Apps = append(f.src.status.Apps, a)
	}
	c := f.client()
	f.login(c, viewerToken)
	rows := regexp.MustCompile(`<tr id="app-([^"]+)"`)
	names := func(q url.Values) []string {
		t.Helper()
		code, body, _ := f.do(c, "GET", "/ui/?"+q.Encode(), nil)
		if code != 200 {
			t.Fatalf("GET /ui/?%s = %d", q.Encode(), code)
		}
		var out []string
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	for _, c := range []struct {
		q     url.Values
		n     int
		first string
	}{
		{url.Values{}, 50, "app-000"},
		{url.Values{"page": {"3"}}, 20, "app-100"},
		{url.Values{"page": {"99"}}, 20, "app-100"},
		{url.Values{"q": {"app-11"}}, 10, "app-110"},
		{url.Values{"phase": {"unhealthy"}}, 13, "app-000"},
		{url.Values{"phase": {"degraded"}, "page": {"1"}}, 12, "app-000"},
		{url.Values{"phase": {"pinned"}}, 1, "app-007"},
		{url.Values{"target": {"local"}, "q": {"app-05"}}, 10, "app-050"},
	} {
		got := names(c.q)
		if len(got) != c.n || got[0] != c.first {
			t.Errorf("?%s: %d rows from %v, want %d from %s", c.q.Encode(), len(got), got[:min(3, len(got))], c.n, c.first)
		}
	}
	if code, body, _ := f.do(c, "GET", "/ui/?target=nowhere", nil); code != 404 || !strings.Contains(body, `there is no target &#34;nowhere&#34;`) {
		t.Errorf("unknown target = %d", code)
	}
}

func TestFleetViewsAndActions(t *testing.T) {
	src := &fakeSource{}
	fl := newFakeFleet(300)
	d, err := New(Options{Source: src, Fleet: fl, OperatorToken: opToken, ViewerToken: viewerToken})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, src: src, d: d}
	f.srv = httptest.NewServer(d)
	t.Cleanup(func() { d.Close(); f.srv.Close() })
	op, viewer := f.client(), f.client()
	csrf := f.login(op, opToken)
	f.login(viewer, viewerToken)

	devRows := regexp.MustCompile(`<tr data-device="([^"]+)" data-state="([^"]+)"`)
	for _, c := range []struct {
		q    string
		n    int
		code int
	}{
		{"", 50, 200},
		{"?selector=ring%3Dcanary&page=2", 50, 200},
		{"?selector=ring%3Dcanary&page=3", 0, 200}, // 100 canaries: page 3 is clamped to 2
		{"?state=unhealthy", 4, 200},
		{"?selector=ring%3Dcanary&state=unhealthy", 2, 200}, // devices 0 and 291
		{"?selector=ring%3Dedge&state=unhealthy", 1, 200},   // device 97
		{"?selector=%3D%3D", 0, 400},
		{"?state=sleepy", 0, 400},
	} {
		code, body, _ := f.do(viewer, "GET", "/ui/fleet/devices"+c.q, nil)
		if code != c.code {
			t.Errorf("devices%s = %d, want %d", c.q, code, c.code)
			continue
		}
		if code != 200 {
			continue
		}
		m := devRows.FindAllStringSubmatch(body, -1)
		if c.q == "?selector=ring%3Dcanary&page=3" {
			if len(m) != 50 || !strings.Contains(body, "page 2 of 2") {
				t.Errorf("devices%s: %d rows", c.q, len(m))
			}
			continue
		}
		if len(m) != c.n {
			t.Errorf("devices%s: %d rows, want %d", c.q, len(m), c.n)
		}
		for _, r := range m {
			if strings.Contains(c.q, "state=unhealthy") && r[2] != "unhealthy" {
				t.Errorf("devices%s: row %v", c.q, r)
			}
		}
	}
	_, page, _ := f.do(op, "GET", "/ui/fleet", nil)
	for _, want := range []string{`id="rollout-edge-app-0000"`, `data-outcome="soaking"`, `class="countdown"`, `wave <b class="wave">2</b>/4`, `class="pause"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the fleet page lacks %s", want)
		}
	}
	if _, vpage, _ := f.do(viewer, "GET", "/ui/fleet", nil); strings.Contains(vpage, `class="pause"`) {
		t.Error("a viewer sees the pause button")
	}
	if code, body, h := f.do(op, "POST", "/ui/fleet/edge/app-0000/abort", url.Values{"csrf": {csrf}, "reason": {"bad canary"}}); code != http.StatusSeeOther {
		t.Fatalf("abort = %d %s %v", code, body, h)
	} else {
		t.Logf("abort → %s", h.Get("Location"))
	}
	if code, _, _ := f.do(op, "POST", "/ui/fleet/edge/app-0000/explode", url.Values{"csrf": {csrf}}); code != http.StatusNotFound {
		t.Errorf("unknown action = %d", code)
	}
	if len(fl.acts) != 1 || fl.acts[0] != "abort edge/app-0000: bad canary" {
		t.Errorf("fleet actions %q", fl.acts)
	}
}
