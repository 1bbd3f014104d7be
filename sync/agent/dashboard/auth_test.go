package dashboard

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/history"
)

// fakeSource is the agent side of a unit test of the dashboard's own
// logic (auth, sessions, CSRF, roles): it records the actions it is asked
// for. The end-to-end tests in cmd/ferry run the real agent.
type fakeSource struct {
	mu      sync.Mutex
	status  agent.Status
	pins    []string
	unpins  []string
	syncs   int
	bus     agent.Bus
	history []history.AppRecord
}

func (f *fakeSource) Status() agent.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}
func (f *fakeSource) Rounds(int) ([]history.Round, error) { return nil, nil }
func (f *fakeSource) History(string, int) ([]history.AppRecord, error) {
	return f.history, nil
}
func (f *fakeSource) Pin(app, digest string) (history.Pin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins = append(f.pins, app+"@"+digest)
	return history.Pin{App: app, Digest: "sha256:0123456789abcdef"}, nil
}
func (f *fakeSource) Unpin(app string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unpins = append(f.unpins, app)
	return nil
}
func (f *fakeSource) Sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
}
func (f *fakeSource) Subscribe(n int) *agent.Subscription { return f.bus.Subscribe(n) }

func (f *fakeSource) actions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pins) + len(f.unpins) + f.syncs
}

const (
	opToken     = "operator-token-0123456789"
	viewerToken = "viewer-token-0123456789"
)

type fixture struct {
	t   *testing.T
	src *fakeSource
	d   *Dashboard
	srv *httptest.Server
	now time.Time
	mu  sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, src: &fakeSource{}, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	f.src.status.Apps = []agent.AppStatus{{Name: "web", Desired: "sha256:aaaa", Targets: []agent.AppTargetStatus{{Target: "local", Digest: "sha256:aaaa", Healthy: true, Phase: "ready"}}}}
	d, err := New(Options{Source: f.src, OperatorToken: opToken, ViewerToken: viewerToken, SessionTTL: time.Hour, LoginAttempts: 3,
		Now: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	f.srv = httptest.NewServer(d)
	t.Cleanup(func() { d.Close(); f.srv.Close() })
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// client returns a browser-like client: a cookie jar, no redirects
// followed.
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) do(c *http.Client, method, path string, form url.Values) (int, string, http.Header) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// login logs c in with token and returns the CSRF token of its session.
func (f *fixture) login(c *http.Client, token string) string {
	f.t.Helper()
	code, body, _ := f.do(c, "POST", "/ui/login", url.Values{"token": {token}})
	if code != http.StatusSeeOther {
		f.t.Fatalf("login = %d %s", code, body)
	}
	code, body, _ = f.do(c, "GET", "/ui/", nil)
	if code != http.StatusOK {
		f.t.Fatalf("GET /ui/ after login = %d", code)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		f.t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func TestLoginCookie(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	code, _, h := f.do(c, "POST", "/ui/login", url.Values{"token": {opToken}})
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/" {
		t.Fatalf("login = %d to %q", code, h.Get("Location"))
	}
	sc := h.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP: the browser would never send it", sc)
	}
	if strings.Contains(sc, opToken) {
		t.Errorf("the cookie carries the token")
	}
	// A TLS listener marks it Secure.
	ts := httptest.NewTLSServer(f.d)
	defer ts.Close()
	tc := ts.Client()
	tc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := tc.PostForm(ts.URL+"/ui/login", url.Values{"token": {opToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Errorf("over TLS Set-Cookie %q is not Secure", sc)
	}
}

// TestAuthTable: every page and action with no session, a viewer and an
// operator session, and actions without or with a wrong CSRF token.
func TestAuthTable(t *testing.T) {
	f := newFixture(t)
	anon := f.client()
	viewer, op := f.client(), f.client()
	vcsrf, ocsrf := f.login(viewer, viewerToken), f.login(op, opToken)
	if vcsrf == ocsrf {
		t.Fatal("two sessions share a CSRF token")
	}

	pages := []string{"/ui/", "/ui/apps/web", "/ui/targets", "/ui/history", "/ui/static/app.js"}
	for _, p := range pages {
		t.Run("GET "+p, func(t *testing.T) {
			code, _, h := f.do(anon, "GET", p, nil)
			if code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
				t.Errorf("no session: %d to %q, want 303 to /ui/login", code, h.Get("Location"))
			}
			for name, c := range map[string]*http.Client{"viewer": viewer, "operator": op} {
				if code, body, _ := f.do(c, "GET", p, nil); code != http.StatusOK {
					t.Errorf("%s: %d %s", name, code, body)
				}
			}
		})
	}
	if code, _, _ := f.do(anon, "GET", "/ui/events", nil); code != http.StatusUnauthorized {
		t.Errorf("events without a session = %d, want 401", code)
	}

	type row struct {
		name   string
		c      *http.Client
		csrf   string
		want   int
		acted  bool
		reason string
	}
	actions := []string{"/ui/apps/web/rollback", "/ui/apps/web/unpin", "/ui/sync"}
	for _, path := range actions {
		rows := []row{
			{"no session", anon, ocsrf, http.StatusUnauthorized, false, "log in first"},
			{"viewer", viewer, vcsrf, http.StatusForbidden, false, "operator role"},
			{"operator without CSRF", op, "", http.StatusForbidden, false, "CSRF"},
			{"operator with a wrong CSRF", op, ocsrf + "x", http.StatusForbidden, false, "CSRF"},
			{"operator with the viewer's CSRF", op, vcsrf, http.StatusForbidden, false, "CSRF"},
			{"operator", op, ocsrf, http.StatusSeeOther, true, ""},
		}
		for _, r := range rows {
			t.Run(path+" "+r.name, func(t *testing.T) {
				before := f.src.actions()
				form := url.Values{}
				if r.csrf != "" {
					form.Set("csrf", r.csrf)
				}
				code, body, _ := f.do(r.c, "POST", path, form)
				if code != r.want {
					t.Fatalf("= %d %s, want %d", code, body, r.want)
				}
				if r.reason != "" && !strings.Contains(body, r.reason) {
					t.Errorf("body does not say %q: %s", r.reason, body)
				}
				if acted := f.src.actions() > before; acted != r.acted {
					t.Errorf("acted = %v, want %v", acted, r.acted)
				}
			})
		}
	}
	if f.src.pins[0] != "web@" || f.src.unpins[0] != "web" || f.src.syncs != 1 {
		t.Errorf("actions = pins %v unpins %v syncs %d", f.src.pins, f.src.unpins, f.src.syncs)
	}
	// A cross-origin POST with the right token is refused too.
	req, _ := http.NewRequest("POST", f.srv.URL+"/ui/sync", strings.NewReader(url.Values{"csrf": {ocsrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.invalid")
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || f.src.syncs != 1 {
		t.Errorf("cross-origin sync = %d (syncs %d), want 403", resp.StatusCode, f.src.syncs)
	}
	// Logout ends the session.
	if code, _, _ := f.do(op, "POST", "/ui/logout", url.Values{"csrf": {ocsrf}}); code != http.StatusSeeOther {
		t.Fatalf("logout = %d", code)
	}
	if code, _, _ := f.do(op, "GET", "/ui/", nil); code != http.StatusSeeOther {
		t.Errorf("after logout GET /ui/ = %d, want 303", code)
	}
}

func TestWrongTokenAndRateLimit(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for i, tok := range []string{"", "nope", opToken + "x"} {
		code, body, h := f.do(c, "POST", "/ui/login", url.Values{"token": {tok}})
		if code != http.StatusUnauthorized || !strings.Contains(body, "not valid") || h.Get("Set-Cookie") != "" {
			t.Fatalf("attempt %d (%q) = %d, cookie %q", i, tok, code, h.Get("Set-Cookie"))
		}
	}
	// The fourth attempt within the minute is refused, even with the
	// right token.
	code, body, h := f.do(c, "POST", "/ui/login", url.Values{"token": {opToken}})
	if code != http.StatusTooManyRequests || h.Get("Set-Cookie") != "" || !strings.Contains(body, "Too many failed logins") {
		t.Fatalf("rate-limited login = %d %q", code, h.Get("Set-Cookie"))
	}
	if h.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	f.advance(61 * time.Second)
	if code, _, _ := f.do(c, "POST", "/ui/login", url.Values{"token": {opToken}}); code != http.StatusSeeOther {
		t.Fatalf("login after the window = %d", code)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	f.login(c, viewerToken)
	f.advance(59 * time.Minute)
	if code, _, _ := f.do(c, "GET", "/ui/", nil); code != http.StatusOK {
		t.Fatalf("before expiry = %d", code)
	}
	f.advance(2 * time.Minute)
	if code, _, h := f.do(c, "GET", "/ui/", nil); code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
		t.Fatalf("after expiry = %d %q", code, h.Get("Location"))
	}
	// A made-up session id is no session.
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(f.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: randomToken()}})
	forged := &http.Client{Jar: jar, CheckRedirect: c.CheckRedirect}
	if code, _, _ := f.do(forged, "GET", "/ui/", nil); code != http.StatusSeeOther {
		t.Fatalf("forged session = %d", code)
	}
}

func TestSessionsCapped(t *testing.T) {
	s := newSessions(time.Hour, 3, time.Now)
	var ids []string
	for range 5 {
		id, _ := s.create(RoleViewer)
		ids = append(ids, id)
	}
	if len(s.m) != 3 {
		t.Fatalf("%d sessions kept, want 3", len(s.m))
	}
	if _, ok := s.get(ids[4]); !ok {
		t.Error("the newest session was dropped")
	}
}

func TestTokens(t *testing.T) {
	tk := newTokens("op", "")
	for tok, want := range map[string]Role{"op": RoleOperator, "": "", "o": "", "op ": ""} {
		if got := tk.role(tok); got != want {
			t.Errorf("role(%q) = %q, want %q", tok, got, want)
		}
	}
	if _, err := New(Options{Source: &fakeSource{}, OperatorToken: "same", ViewerToken: "same"}); err == nil {
		t.Error("a viewer token equal to the operator's was accepted")
	}
}

// TestEveryRouteNeedsASession sends each route of Routes without a session:
// only the login form (and / redirecting to it) answers; every other page
// redirects to the login form and every other request is 401.
func TestEveryRouteNeedsASession(t *testing.T) {
	f := newFixture(t)
	anon := f.client()
	fill := strings.NewReplacer("{app}", "web", "{target}", "edge", "{action}", "pause", "{$}", "")
	routes := f.d.Routes()
	if len(routes) < 16 {
		t.Fatalf("routes %q", routes)
	}
	for _, p := range routes {
		method, path, _ := strings.Cut(p, " ")
		path = fill.Replace(path)
		var form url.Values
		if method == "POST" {
			form = url.Values{}
		}
		code, _, h := f.do(anon, method, path, form)
		switch {
		case p == "GET /ui/login":
			if code != http.StatusOK {
				t.Errorf("%s = %d, want 200", p, code)
			}
		case p == "POST /ui/login":
			if code != http.StatusUnauthorized {
				t.Errorf("%s without a token = %d, want 401", p, code)
			}
		case p == "GET /{$}":
			if code != http.StatusSeeOther || h.Get("Location") != "/ui/" {
				t.Errorf("%s = %d to %q", p, code, h.Get("Location"))
			}
		case method == "GET" && path != "/ui/events":
			if code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
				t.Errorf("%s = %d to %q, want 303 to /ui/login", p, code, h.Get("Location"))
			}
		default:
			if code != http.StatusUnauthorized {
				t.Errorf("%s = %d, want 401", p, code)
			}
		}
	}
	if f.src.actions() != 0 {
		t.Errorf("requests without a session acted %d times", f.src.actions())
	}
	// An unknown path is no way around the login either.
	if code, _, _ := f.do(anon, "GET", "/ui/nothing", nil); code != http.StatusSeeOther {
		t.Errorf("GET /ui/nothing = %d, want 303", code)
	}
}
