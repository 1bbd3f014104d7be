package host

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/deploy"
)

// parseEcho splits the echo fixture's answer into env, args and body.
func parseEcho(t *testing.T, out string) (map[string]string, []string, string) {
	t.Helper()
	envPart, rest, ok := strings.Cut(out, "--args--\n")
	argsPart, body, ok2 := strings.Cut(rest, "--body--\n")
	if !ok || !ok2 {
		t.Fatalf("echo output malformed: %q", out)
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSuffix(envPart, "\n"), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	return env, strings.Split(strings.TrimSuffix(argsPart, "\n"), "\n"), body
}

func TestWAGIEnvironment(t *testing.T) {
	e := newEnv(t, Options{})
	echo := fixture(t, "echo")
	a := deploy.App{Name: "env", Components: []deploy.Component{
		{Name: "wild", Digest: digestOf(echo), Routes: []string{"/env/..."}, Env: map[string]string{"FOO": "bar"}},
		{Name: "params", Digest: digestOf(echo), Routes: []string{"/p/:id/:name"}},
	}}
	e.deploy(t, a, echo)
	u, _ := url.Parse(e.srv.URL)

	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/env/a%20b/c?x=1&y=two%21", strings.NewReader("hello-body"))
	req.Header.Set("X-Custom", "v1")
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer hidden")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	env, args, body := parseEcho(t, b)
	want := map[string]string{
		"REQUEST_METHOD":    "POST",
		"PATH_INFO":         "/a b/c",
		"PATH_TRANSLATED":   "/a b/c",
		"X_RAW_PATH_INFO":   "/a%20b/c",
		"X_RELATIVE_PATH":   "a b/c",
		"SCRIPT_NAME":       "/env",
		"X_MATCHED_ROUTE":   "/env/...",
		"QUERY_STRING":      "x=1&y=two%21",
		"SERVER_NAME":       "127.0.0.1",
		"SERVER_PORT":       u.Port(),
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"GATEWAY_INTERFACE": "CGI/1.1",
		"CONTENT_TYPE":      "text/plain",
		"CONTENT_LENGTH":    "10",
		"REMOTE_ADDR":       "127.0.0.1",
		"REMOTE_HOST":       "127.0.0.1",
		"AUTH_TYPE":         "",
		"REMOTE_USER":       "",
		"X_FULL_URL":        "http://127.0.0.1:" + u.Port() + "/env/a%20b/c?x=1&y=two%21",
		"HTTP_X_CUSTOM":     "v1",
		"HTTP_HOST":         u.Host,
		"FOO":               "bar",
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := env["HTTP_AUTHORIZATION"]; ok {
		t.Error("HTTP_AUTHORIZATION must not be passed to the guest")
	}
	if diff := cmp.Diff([]string{"/env", "x=1", "y=two!"}, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if body != "hello-body" {
		t.Errorf("stdin body = %q, want hello-body", body)
	}

	code, out := e.get(t, "/p/42/ann%20b")
	if code != 200 {
		t.Fatalf("params: status %d", code)
	}
	env, _, _ = parseEcho(t, out)
	if env["X_PARAM_ID"] != "42" || env["X_PARAM_NAME"] != "ann b" || env["X_MATCHED_ROUTE"] != "/p/:id/:name" || env["PATH_INFO"] != "" {
		t.Errorf("param env: ID=%q NAME=%q ROUTE=%q PATH_INFO=%q", env["X_PARAM_ID"], env["X_PARAM_NAME"], env["X_MATCHED_ROUTE"], env["PATH_INFO"])
	}
}

func TestWAGICGIResponse(t *testing.T) {
	e := newEnv(t, Options{})
	raw := fixture(t, "raw")
	e.deploy(t, app("raw", deploy.ExecutorWAGI, raw, "/raw"), raw)
	tests := []struct {
		name     string
		out      string
		status   int
		header   [2]string
		wantBody string
	}{
		{"default 200", "Content-Type: text/html\n\n<p>hi</p>", 200, [2]string{"Content-Type", "text/html"}, "<p>hi</p>"},
		{"status", "Status: 404 Not Found\nContent-Type: text/plain\n\nnope", 404, [2]string{"Content-Type", "text/plain"}, "nope"},
		{"location", "Location: /elsewhere\n\n", 302, [2]string{"Location", "/elsewhere"}, ""},
		{"location with status", "Location: /perm\nstatus: 301\n\n", 301, [2]string{"Location", "/perm"}, ""},
		{"crlf and custom header", "content-type: text/plain\r\nX-Thing: yes\r\n\r\nbody\n", 200, [2]string{"X-Thing", "yes"}, "body\n"},
		{"no blank line", "Content-Type: text/plain\n", 500, [2]string{}, ""},
		{"no sufficient header", "X-Only: 1\n\nbody", 500, [2]string{}, ""},
		{"bad status", "Status: abc\n\n", 500, [2]string{}, ""},
		{"common value", "Content-Type:  application/json \n\n{}", 200, [2]string{"Content-Type", "application/json"}, "{}"},
		{"value like a common one", "Content-Type: application/jsonx\n\n{}", 200, [2]string{"Content-Type", "application/jsonx"}, "{}"},
		{"cache control", "Content-Type: text/plain\nCache-Control: no-store\n\nx", 200, [2]string{"Cache-Control", "no-store"}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/raw", strings.NewReader(tt.out))
			client := *e.srv.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.status == 500 {
				return
			}
			if got := resp.Header.Get(tt.header[0]); got != tt.header[1] {
				t.Errorf("header %s = %q, want %q", tt.header[0], got, tt.header[1])
			}
			if body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestWAGIStderrGoesToLogNotResponse(t *testing.T) {
	e := newEnv(t, Options{})
	w := fixture(t, "stderr")
	e.deploy(t, app("noisy", deploy.ExecutorWAGI, w, "/"), w)
	code, body := e.get(t, "/")
	if code != 200 || body != "visible\n" {
		t.Errorf("got %d %q, want 200 \"visible\\n\"", code, body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "guest-stderr-marker: something broke") || !strings.Contains(logs, "app=noisy") {
		t.Errorf("stderr line not logged with the app label:\n%s", logs)
	}
}
