package host

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/deploy"
)

func TestRouterMatch(t *testing.T) {
	patterns := []string{
		"/", "/hello", "/hello/...", "/api/...", "/api/users", "/api/users/:id",
		"/api/users/:id/posts/...", "/files/:dir/:name", "/static/...",
	}
	v := &version{app: deploy.App{Name: "a"}}
	c := &component{name: "c"}
	var rt router
	for _, p := range patterns {
		if err := rt.add(&target{v: v, comp: c, pattern: p, script: scriptName(p)}); err != nil {
			t.Fatalf("add %s: %v", p, err)
		}
	}
	type result struct {
		Pattern string
		Params  []string
		Rest    string
	}
	tests := []struct {
		path string
		want *result
	}{
		{"/", &result{Pattern: "/"}},
		{"/hello", &result{Pattern: "/hello"}},  // exact beats prefix
		{"/hello/", &result{Pattern: "/hello"}}, // empty segments ignored
		{"/hello/x/y", &result{Pattern: "/hello/...", Rest: "/x/y"}},
		{"/api", &result{Pattern: "/api/..."}},         // a prefix matches its own root
		{"/api/users", &result{Pattern: "/api/users"}}, // literal beats prefix
		{"/api/users/42", &result{Pattern: "/api/users/:id", Params: []string{"42"}}},
		{"/api/users/42/posts", &result{Pattern: "/api/users/:id/posts/...", Params: []string{"42"}}},
		{"/api/users/42/posts/7", &result{Pattern: "/api/users/:id/posts/...", Params: []string{"42"}, Rest: "/7"}},
		{"/api/users/42/other", &result{Pattern: "/api/...", Rest: "/users/42/other"}}, // backtracks to the prefix
		{"/files/a/b", &result{Pattern: "/files/:dir/:name", Params: []string{"a", "b"}}},
		{"/files/a", nil},
		{"/files/a/b/c", nil},
		{"/static/css/x.css", &result{Pattern: "/static/...", Rest: "/css/x.css"}},
		{"/nothing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var m match
			var got *result
			if rt.lookup(tt.path, &m) {
				got = &result{Pattern: m.t.pattern, Params: m.params, Rest: m.rest}
				if len(got.Params) == 0 {
					got.Params = nil
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lookup(%q) (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

func TestRouterCatchAllAndConflicts(t *testing.T) {
	v := &version{app: deploy.App{Name: "a"}}
	c := &component{name: "c"}
	var rt router
	if err := rt.add(&target{v: v, comp: c, pattern: "/..."}); err != nil {
		t.Fatal(err)
	}
	var m match
	if !rt.lookup("/any/thing", &m) || m.t.pattern != "/..." || m.rest != "/any/thing" {
		t.Errorf("catch-all: got %+v", m)
	}
	if !rt.lookup("/", &m) || m.t.pattern != "/..." {
		t.Errorf("catch-all on /: got %+v", m)
	}
	err := rt.add(&target{v: v, comp: c, pattern: "/..."})
	if err == nil || !strings.Contains(err.Error(), "already served") {
		t.Errorf("duplicate route: err = %v", err)
	}
	for _, bad := range []string{"nope", "/a/.../b", "/a/:"} {
		if _, _, err := splitPattern(bad); err == nil {
			t.Errorf("splitPattern(%q) accepted", bad)
		}
	}
}

// TestHostRouting checks Host-header routing through the real handler:
// host-specific apps first, then apps answering any host, else 404.
func TestHostRouting(t *testing.T) {
	e := newEnv(t, Options{})
	hello, echo := fixture(t, "hello"), fixture(t, "echo")
	a := app("a", deploy.ExecutorWAGI, echo, "/...")
	a.Hosts = []string{"A.example"}
	e.deploy(t, a, echo)
	c := app("c", deploy.ExecutorWAGI, hello, "/only")
	c.Hosts = []string{"c.example"}
	e.deploy(t, c, hello)

	if code, _, _ := e.do(t, http.MethodGet, "other.example", "/x", nil); code != http.StatusNotFound {
		t.Errorf("no app for host: status %d, want 404", code)
	}
	any := app("any", deploy.ExecutorWAGI, hello, "/...")
	e.deploy(t, any, hello)

	tests := []struct {
		host, path, want string
	}{
		{"a.example", "/x", "X_MATCHED_ROUTE=/..."}, // echo answers with its env
		{"a.example:8080", "/y", "SERVER_NAME=a.example"},
		{"c.example", "/only", "hello"},
		{"c.example", "/other", "hello"}, // falls back to the any-host app
		{"other.example", "/x", "hello"},
	}
	for _, tt := range tests {
		code, body, _ := e.do(t, http.MethodGet, tt.host, tt.path, nil)
		if code != http.StatusOK || !strings.Contains(body, tt.want) {
			t.Errorf("Host %s %s: %d %q, want 200 containing %q", tt.host, tt.path, code, body, tt.want)
		}
	}
	// Same route on the same host by another app is refused.
	dup := app("dup", deploy.ExecutorWAGI, hello, "/only")
	dup.Hosts = []string{"c.example"}
	if err := e.rt.Deploy(t.Context(), dup, bundle(hello)); err == nil || !strings.Contains(err.Error(), "already served") {
		t.Errorf("conflicting deploy: err = %v", err)
	}
}
