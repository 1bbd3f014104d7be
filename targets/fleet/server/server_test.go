package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/google/go-cmp/cmp"
)

// clock is a settable clock for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t   *testing.T
	dir string
	clk *clock
	srv *Server
	url string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clk: newClock()}
	f.open()
	return f
}

// open (re)opens a server over the fixture's directory and serves it.
func (f *fixture) open() {
	f.t.Helper()
	srv, err := Open(f.dir, Options{Now: f.clk.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	f.t.Cleanup(hs.Close)
	f.srv, f.url = srv, hs.URL
}

func (f *fixture) token(opts TokenOptions) (Token, string) {
	f.t.Helper()
	tok, secret, err := f.srv.CreateToken(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok, secret
}

type answer struct {
	code int
	body []byte
	hdr  http.Header
}

func (a answer) errCode(t *testing.T) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(a.body, &eb); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	if eb.Error == "" {
		t.Errorf("error body %q has no message", a.body)
	}
	return eb.Code
}

func (f *fixture) do(method, path, cred string, hdr map[string]string, body any) answer {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else {
			data, _ := json.Marshal(body)
			rd = bytes.NewReader(data)
		}
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, data, resp.Header}
}

func (f *fixture) enroll(secret, name string, labels map[string]string) (answer, api.EnrollResponse) {
	f.t.Helper()
	a := f.do("POST", api.PathEnroll, "", nil, api.EnrollRequest{Token: secret, Name: name, Labels: labels, Info: api.DeviceInfo{Arch: "arm64", OS: "linux"}})
	var er api.EnrollResponse
	if a.code == http.StatusOK {
		if err := json.Unmarshal(a.body, &er); err != nil {
			f.t.Fatal(err)
		}
	}
	return a, er
}

func (f *fixture) mustEnroll(secret, name string) api.EnrollResponse {
	f.t.Helper()
	a, er := f.enroll(secret, name, nil)
	if a.code != http.StatusOK {
		f.t.Fatalf("enroll: %d %s", a.code, a.body)
	}
	return er
}

func desiredPath(id string) string { return fmt.Sprintf(api.PathDesiredFmt, id) }
func statusPath(id string) string  { return fmt.Sprintf(api.PathStatusFmt, id) }

var okReport = api.StatusReport{Apps: []api.AppStatus{{Name: "web", Digest: "sha256:aa", Phase: api.PhaseServing, Healthy: true}}}

// TestAuth is the device API's auth table: each way in, the exact status
// and error code.
func TestAuth(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(TokenOptions{Labels: map[string]string{"ring": "canary"}})
	a := f.mustEnroll(secret, "Kiosk 1")
	b := f.mustEnroll(secret, "kiosk-2")
	revoked := f.mustEnroll(secret, "gone")
	if err := f.srv.RevokeDevice(revoked.DeviceID); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.DeviceID, "kiosk-1-") || a.DeviceID == b.DeviceID {
		t.Errorf("device IDs %q, %q: want kiosk-1-<hex> and another", a.DeviceID, b.DeviceID)
	}
	if a.Credential == b.Credential || !strings.HasPrefix(a.Credential, credentialPrefix) {
		t.Errorf("credentials are not distinct, prefixed values")
	}

	cases := []struct {
		name   string
		cred   string
		path   string
		status int
		code   string
	}{
		{"desired, no credential", "", desiredPath(a.DeviceID), 401, api.CodeUnauthorized},
		{"desired, wrong credential", "ferry-device-nope", desiredPath(a.DeviceID), 401, api.CodeUnauthorized},
		{"desired, another device's", b.Credential, desiredPath(a.DeviceID), 403, api.CodeForbidden},
		{"desired, revoked device", revoked.Credential, desiredPath(revoked.DeviceID), 401, api.CodeUnauthorized},
		{"desired, token as credential", secret, desiredPath(a.DeviceID), 401, api.CodeUnauthorized},
		{"desired, own", a.Credential, desiredPath(a.DeviceID), 200, ""},
		{"status, no credential", "", statusPath(a.DeviceID), 401, api.CodeUnauthorized},
		{"status, wrong credential", "x", statusPath(a.DeviceID), 401, api.CodeUnauthorized},
		{"status, another device's", b.Credential, statusPath(a.DeviceID), 403, api.CodeForbidden},
		{"status, revoked device", revoked.Credential, statusPath(revoked.DeviceID), 401, api.CodeUnauthorized},
		{"status, own", a.Credential, statusPath(a.DeviceID), 204, ""},
		{"unknown device path", a.Credential, desiredPath("nobody-00000000"), 403, api.CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, body := "GET", any(nil)
			if strings.HasSuffix(tc.path, "/status") {
				method, body = "PUT", okReport
			}
			ans := f.do(method, tc.path, tc.cred, nil, body)
			if ans.code != tc.status {
				t.Fatalf("status %d (%s), want %d", ans.code, ans.body, tc.status)
			}
			if tc.code != "" {
				if got := ans.errCode(t); got != tc.code {
					t.Errorf("code %q, want %q", got, tc.code)
				}
			}
			if tc.status == 401 && ans.hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// What a and b may read and write is their own: b's report did not
	// land on a.
	da, _ := f.srv.Device(a.DeviceID)
	db, _ := f.srv.Device(b.DeviceID)
	if da.Status == nil || db.Status != nil {
		t.Errorf("statuses: a %v, b %v; want only a's", da.Status, db.Status)
	}
	if da.Labels["ring"] != "canary" {
		t.Errorf("labels %v: want the token's ring=canary", da.Labels)
	}
}

// TestEnrollTokens: expired, used-up, revoked and unknown tokens answer 401
// bad_token; a token's labels win over the device's.
func TestEnrollTokens(t *testing.T) {
	f := newFixture(t)
	_, expiring := f.token(TokenOptions{TTL: time.Hour})
	_, twice := f.token(TokenOptions{MaxUses: 2, Labels: map[string]string{"site": "berlin"}})
	revTok, revoked := f.token(TokenOptions{})
	if err := f.srv.RevokeToken(revTok.ID); err != nil {
		t.Fatal(err)
	}

	if a, _ := f.enroll(expiring, "a", nil); a.code != 200 {
		t.Fatalf("fresh token: %d %s", a.code, a.body)
	}
	a, er := f.enroll(twice, "b", map[string]string{"site": "paris", "kind": "kiosk"})
	if a.code != 200 {
		t.Fatalf("first use: %d %s", a.code, a.body)
	}
	if diff := cmp.Diff(map[string]string{"site": "berlin", "kind": "kiosk"}, er.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if a, _ := f.enroll(twice, "c", nil); a.code != 200 {
		t.Fatalf("second use: %d %s", a.code, a.body)
	}
	f.clk.Add(time.Hour)

	cases := []struct{ name, token string }{
		{"expired", expiring},
		{"used up", twice},
		{"revoked", revoked},
		{"unknown", "ferry-enroll-nope"},
		{"empty", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := f.enroll(tc.token, "x", nil)
			if a.code != http.StatusUnauthorized {
				t.Fatalf("status %d (%s), want 401", a.code, a.body)
			}
			if got := a.errCode(t); got != api.CodeBadToken {
				t.Errorf("code %q, want %q", got, api.CodeBadToken)
			}
		})
	}
	if n := len(f.srv.Devices(nil)); n != 3 {
		t.Errorf("%d devices, want 3", n)
	}
	for _, tc := range []struct {
		name string
		body any
	}{
		{"bad label", api.EnrollRequest{Token: twice, Labels: map[string]string{"bad key!": "x"}}},
		{"not json", []byte("{")},
		{"too large", []byte(`{"name":"` + strings.Repeat("a", maxEnrollBody) + `"}`)},
	} {
		a := f.do("POST", api.PathEnroll, "", nil, tc.body)
		if a.code != 400 || a.errCode(t) != api.CodeBadRequest {
			t.Errorf("%s: %d %s, want 400 bad_request", tc.name, a.code, a.body)
		}
	}
}

// TestSecretsStoredHashed: no token or credential appears in the store.
func TestSecretsStoredHashed(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(TokenOptions{})
	er := f.mustEnroll(secret, "d")
	filepath.Walk(f.dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte(er.Credential)) {
			t.Errorf("%s holds a secret in clear", p)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, info.Mode().Perm())
		}
		return nil
	})
}

func getDesired(t *testing.T, f *fixture, er api.EnrollResponse, etag, wait string) (answer, api.Desired) {
	t.Helper()
	path := desiredPath(er.DeviceID)
	if wait != "" {
		path += "?wait=" + wait
	}
	hdr := map[string]string{}
	if etag != "" {
		hdr["If-None-Match"] = etag
	}
	a := f.do("GET", path, er.Credential, hdr, nil)
	var d api.Desired
	if a.code == 200 {
		if err := json.Unmarshal(a.body, &d); err != nil {
			t.Fatal(err)
		}
	}
	return a, d
}

// TestLongPoll: 304 after the wait when unchanged, 200 at once on a change,
// the ETag is the quoted version, wait is clamped and checked.
func TestLongPoll(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(TokenOptions{})
	er := f.mustEnroll(secret, "d")
	a, d := getDesired(t, f, er, "", "")
	if a.code != 200 || len(d.Apps) != 0 || a.hdr.Get("ETag") != `"`+d.Version+`"` || d.Version == "" {
		t.Fatalf("first GET: %d %s etag %q", a.code, a.body, a.hdr.Get("ETag"))
	}
	etag := a.hdr.Get("ETag")

	start := time.Now()
	a, _ = getDesired(t, f, er, etag, "300ms")
	if el := time.Since(start); a.code != 304 || el < 300*time.Millisecond || el > 3*time.Second {
		t.Fatalf("unchanged long-poll: %d after %v, want 304 after 300ms", a.code, el)
	}
	if a.hdr.Get("ETag") != etag {
		t.Errorf("304 ETag %q, want %q", a.hdr.Get("ETag"), etag)
	}
	if a, _ = getDesired(t, f, er, etag, ""); a.code != 304 {
		t.Errorf("conditional GET without wait: %d, want 304 at once", a.code)
	}

	app := api.DesiredApp{Name: "web", Ref: "r/web@sha256:aa", Digest: "sha256:aa", Values: map[string]string{"k": "v"}}
	go func() {
		time.Sleep(200 * time.Millisecond)
		f.srv.SetDesiredApp(er.DeviceID, "fleet/web", &app)
	}()
	start = time.Now()
	a, d = getDesired(t, f, er, etag, "30s")
	if el := time.Since(start); a.code != 200 || el > 5*time.Second {
		t.Fatalf("changed long-poll: %d after %v, want 200 at once on the change", a.code, el)
	}
	if diff := cmp.Diff([]api.DesiredApp{app}, d.Apps); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	if a.hdr.Get("ETag") == etag {
		t.Error("the version did not change")
	}
	// Setting the same app again changes nothing; a stale ETag gets 200.
	f.srv.SetDesiredApp(er.DeviceID, "fleet/web", &app)
	if a2, _ := getDesired(t, f, er, a.hdr.Get("ETag"), ""); a2.code != 304 {
		t.Errorf("after an identical set: %d, want 304", a2.code)
	}
	if a2, _ := getDesired(t, f, er, etag, "30s"); a2.code != 200 {
		t.Errorf("stale ETag: %d, want 200 at once", a2.code)
	}

	// A revocation ends a pending long-poll with 401 at once.
	go func() {
		time.Sleep(200 * time.Millisecond)
		f.srv.RevokeDevice(er.DeviceID)
	}()
	start = time.Now()
	a, _ = getDesired(t, f, er, a.hdr.Get("ETag"), "30s")
	if el := time.Since(start); a.code != 401 || el > 5*time.Second {
		t.Errorf("revoked during long-poll: %d after %v, want 401 at once", a.code, el)
	}

	for _, w := range []string{"soon", "-1s"} {
		er2 := f.mustEnroll(secret, "w")
		if a, _ := getDesired(t, f, er2, "", w); a.code != 400 || a.errCode(t) != api.CodeBadRequest {
			t.Errorf("wait=%s: %d %s, want 400", w, a.code, a.body)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"30s", 30 * time.Second}, {"10", 10 * time.Second}, {"1h", api.MaxWait}, {"", 0}} {
		if got, err := parseWait(tc.in); err != nil || got != tc.want {
			t.Errorf("parseWait(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestStatus: a report is recorded with the server's time, bad ones are
// refused, and subscribers hear of it.
func TestStatus(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(TokenOptions{})
	er := f.mustEnroll(secret, "d")
	ch, cancel := f.srv.Subscribe()
	defer cancel()
	f.clk.Add(time.Minute)
	rep := okReport
	rep.Info = api.DeviceInfo{Version: "1.0", Arch: "arm/v7", OS: "linux", FreeMemory: 42}
	if a := f.do("PUT", statusPath(er.DeviceID), er.Credential, nil, rep); a.code != 204 {
		t.Fatalf("status: %d %s", a.code, a.body)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Error("no notification of the report")
	}
	d, _ := f.srv.Device(er.DeviceID)
	if !d.LastReport.Equal(f.clk.Now()) || !d.LastSeen.Equal(f.clk.Now()) || d.Info.Arch != "arm/v7" {
		t.Errorf("device %+v: want the report's info and last report %v", d, f.clk.Now())
	}
	if diff := cmp.Diff(&rep, d.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	for name, body := range map[string]any{
		"unknown phase": api.StatusReport{Apps: []api.AppStatus{{Name: "web", Phase: "dancing"}}},
		"no app name":   api.StatusReport{Apps: []api.AppStatus{{Phase: api.PhaseServing}}},
		"not json":      []byte("nope"),
		"too large":     []byte(`{"apps":[],"x":"` + strings.Repeat("a", maxStatusBody) + `"}`),
	} {
		if a := f.do("PUT", statusPath(er.DeviceID), er.Credential, nil, body); a.code != 400 || a.errCode(t) != api.CodeBadRequest {
			t.Errorf("%s: %d %s, want 400 bad_request", name, a.code, a.body)
		}
	}
}

// TestPersistence: a new server over the same directory (as after SIGKILL:
// nothing is flushed on close) knows every device, credential, token use
// and revocation.
func TestPersistence(t *testing.T) {
	f := newFixture(t)
	twiceTok, twice := f.token(TokenOptions{MaxUses: 2, TTL: time.Hour, Labels: map[string]string{"ring": "a"}})
	revTok, _ := f.token(TokenOptions{})
	f.srv.RevokeToken(revTok.ID)
	a := f.mustEnroll(twice, "a")
	gone := f.mustEnroll(twice, "gone")
	f.srv.RevokeDevice(gone.DeviceID)
	f.clk.Add(time.Second)
	if ans := f.do("PUT", statusPath(a.DeviceID), a.Credential, nil, okReport); ans.code != 204 {
		t.Fatal(ans.code)
	}
	before := f.srv.Devices(nil)
	tokensBefore := f.srv.Tokens()
	// A crash mid-write leaves a temporary file; it must not matter.
	os.WriteFile(filepath.Join(f.dir, "devices", ".a.json.tmp-1"), []byte("{"), 0o600)

	f.open()
	if diff := cmp.Diff(before, f.srv.Devices(nil)); diff != "" {
		t.Errorf("devices after reopen (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(tokensBefore, f.srv.Tokens()); diff != "" {
		t.Errorf("tokens after reopen (-before +after):\n%s", diff)
	}
	if ans := f.do("GET", desiredPath(a.DeviceID), a.Credential, nil, nil); ans.code != 200 {
		t.Errorf("a's credential after reopen: %d", ans.code)
	}
	if ans := f.do("GET", desiredPath(gone.DeviceID), gone.Credential, nil, nil); ans.code != 401 {
		t.Errorf("revoked device after reopen: %d, want 401", ans.code)
	}
	if ans, _ := f.enroll(twice, "c", nil); ans.code != 401 {
		t.Errorf("used-up token after reopen: %d, want 401", ans.code)
	}
	var got Token
	for _, tk := range f.srv.Tokens() {
		if tk.ID == twiceTok.ID {
			got = tk
		}
	}
	if got.Uses != 2 || got.MaxUses != 2 || got.Labels["ring"] != "a" {
		t.Errorf("token after reopen: %+v", got)
	}
}
