package control_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// badCredentials are the Authorization headers that must never be enough:
// none, a wrong token, the right token in the wrong scheme, a prefix and
// an extension of the right token, and an empty bearer.
var badCredentials = []struct{ name, header string }{
	{"no credential", ""},
	{"wrong token", "Bearer " + strings.Repeat("x", len(testToken))},
	{"basic scheme", "Basic " + testToken},
	{"token without scheme", testToken},
	{"prefix of the token", "Bearer " + testToken[:len(testToken)-1]},
	{"token plus a byte", "Bearer " + testToken + "0"},
	{"empty bearer", "Bearer "},
	{"lower-case scheme", "bearer " + testToken},
}

// TestControlAuthTable calls every route of a real host's control API (real
// runtime, state store, registry and signature checks) with each bad
// credential and then with the right one. No bad call may change anything
// (the apps, their versions, what is served, the apply lock and every file
// of the state directory stay the same) and each gets 401; the right
// credential gets a 2xx. The table must cover Server.Routes exactly: a
// route added without a row fails the test.
func TestControlAuthTable(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := t.Context()
	v1 := w.push("apps/hello", helloApp("hello"), variant(t, "Hello"))
	w.sign(v1, trusted)
	v2 := w.push("apps/hello", helloApp("hello"), variant(t, "Hallo"))
	w.sign(v2, trusted)
	other := w.push("apps/other", helloApp("other"), variant(t, "Hullo"))
	w.sign(other, trusted)
	for _, ref := range []string{v1, v2} {
		if _, err := w.client.PutApp(ctx, "hello", api.PutRequest{Ref: ref}); err != nil {
			t.Fatal(err)
		}
	}
	w.wantServes("hello.test", "Hallo")

	var leaseID string
	type row struct {
		pattern string
		public  bool // answers without a credential (and changes nothing)
		path    func() string
		body    func() string
		after   func(t *testing.T, body []byte) // checks the right call did its job
	}
	fixed := func(s string) func() string { return func() string { return s } }
	rows := []row{
		{pattern: "GET /healthz", public: true, path: fixed("/healthz")},
		{pattern: "GET /metrics", path: fixed("/metrics"), after: func(t *testing.T, b []byte) {
			if !strings.Contains(string(b), "unauthorized") {
				t.Errorf("/metrics does not count the refused calls:\n%.500s", b)
			}
		}},
		{pattern: "GET /v1/apps", path: fixed("/v1/apps")},
		{pattern: "GET /v1/apps/{name}", path: fixed("/v1/apps/hello")},
		{pattern: "PUT /v1/apps/{name}", path: fixed("/v1/apps/other"), body: fixed(`{"ref":"` + other + `"}`),
			after: func(t *testing.T, _ []byte) { w.wantServes("other.test", "Hullo") }},
		{pattern: "POST /v1/apps/{name}/rollback", path: fixed("/v1/apps/hello/rollback"),
			after: func(t *testing.T, _ []byte) { w.wantServes("hello.test", "Hello") }},
		{pattern: "DELETE /v1/apps/{name}", path: fixed("/v1/apps/other"), after: func(t *testing.T, _ []byte) {
			if code, _ := w.get("other.test", "/"); code != http.StatusNotFound {
				t.Errorf("other.test = %d after DELETE, want 404", code)
			}
		}},
		{pattern: "GET /v1/lock", path: fixed("/v1/lock")},
		{pattern: "POST /v1/lock", path: fixed("/v1/lock"), body: fixed(`{"holder":"auth table","ttl":"1m"}`),
			after: func(t *testing.T, b []byte) {
				var l api.Lease
				if err := json.Unmarshal(b, &l); err != nil || l.ID == "" {
					t.Fatalf("POST /v1/lock = %s (%v)", b, err)
				}
				leaseID = l.ID
			}},
		{pattern: "PUT /v1/lock/{id}", path: func() string { return "/v1/lock/" + leaseID }, body: fixed(`{"ttl":"2m"}`)},
		{pattern: "DELETE /v1/lock/{id}", path: func() string { return "/v1/lock/" + leaseID }, after: func(t *testing.T, _ []byte) {
			if st := w.lockStatus(t); st.Held {
				t.Errorf("the lock is still held after DELETE: %+v", st)
			}
		}},
	}

	var covered []string
	for _, r := range rows {
		covered = append(covered, r.pattern)
	}
	slices.Sort(covered)
	if routes := w.srv.Routes(); !slices.Equal(routes, covered) {
		t.Fatalf("the auth table does not cover the control API exactly:\n routes %q\n table  %q", routes, covered)
	}

	for _, r := range rows {
		method, _, _ := strings.Cut(r.pattern, " ")
		t.Run(r.pattern, func(t *testing.T) {
			before := w.snapshot(t)
			for _, bad := range badCredentials {
				code, b := w.call(t, method, r.path(), r.body, bad.header)
				if r.public {
					if code != http.StatusOK {
						t.Errorf("%s with %s = %d %s, want 200", r.pattern, bad.name, code, b)
					}
				} else if code != http.StatusUnauthorized {
					t.Errorf("%s with %s = %d %s, want 401", r.pattern, bad.name, code, b)
				}
				if now := w.snapshot(t); now != before {
					t.Fatalf("%s with %s changed the host:\n before %s\n after  %s", r.pattern, bad.name, before, now)
				}
			}
			code, b := w.call(t, method, r.path(), r.body, "Bearer "+testToken)
			if code < 200 || code > 299 {
				t.Fatalf("%s with the right token = %d %s, want 2xx", r.pattern, code, b)
			}
			if r.after != nil {
				r.after(t, b)
			}
		})
	}
}

// call sends one request with the Authorization header auth (none when
// empty) to the control listener.
func (w *world) call(t *testing.T, method, path string, body func() string, auth string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body())
	}
	req, err := http.NewRequest(method, w.ctl.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (w *world) lockStatus(t *testing.T) api.LockStatus {
	t.Helper()
	code, b := w.call(t, http.MethodGet, "/v1/lock", nil, "Bearer "+testToken)
	var st api.LockStatus
	if code != http.StatusOK || json.Unmarshal(b, &st) != nil {
		t.Fatalf("GET /v1/lock = %d %s", code, b)
	}
	return st
}

// snapshot describes everything a control call could change: each app's
// versions and secrets' hashes, what each app host name serves, the apply
// lock, and the content of every file in the state directory.
func (w *world) snapshot(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, a := range w.srv.List() {
		code, body := w.get(a.Name+".test", "/")
		parts = append(parts, fmt.Sprintf("app %s %s prev %s %s secrets %v serves %d %q", a.Name, a.Digest, a.Previous, a.Status, a.SecretHashes, code, body))
	}
	st := w.lockStatus(t)
	if st.Lease != nil {
		parts = append(parts, fmt.Sprintf("lock %s %s", st.Lease.ID, st.Lease.Expires))
	}
	var files []string
	err := filepath.WalkDir(w.stateDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(w.stateDir, p)
		files = append(files, rel+"="+hex.EncodeToString(sum[:6]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return strings.Join(parts, "; ") + " files " + strings.Join(files, ",")
}
