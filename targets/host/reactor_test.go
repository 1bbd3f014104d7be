package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

func strp(s string) *string { return &s }

// TestHelloGoExample serves examples/hello-go, a plain http.Handler, through
// the SDK, with its health probe at deploy.
func TestHelloGoExample(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "examples/hello-go")
	a := app("hello-go", deploy.ExecutorReactor, g, "/...")
	a.Components[0].Health = &deploy.Health{Path: "/healthz"}
	e.deploy(t, a, g)
	for i := range 3 { // several requests on the pooled instance
		code, body := e.get(t, fmt.Sprintf("/?name=n%d", i))
		if want := fmt.Sprintf("Hello, n%d, from ferry!\n", i); code != 200 || body != want {
			t.Errorf("got %d %q, want 200 %q", code, body, want)
		}
	}
	st, err := e.rt.App("hello-go")
	if err != nil {
		t.Fatal(err)
	}
	if st.Current.Health != HealthHealthy || st.Current.Components[0].Digest != digestOf(g) {
		t.Errorf("status = %+v", st.Current)
	}
}

// TestReactorWithoutGo serves testdata/reactor-wat, a reactor written in
// WAT with no language runtime (BenchmarkReactorFloor's wat guest), with
// the same answer as the reactor-floor Go guest.
func TestReactorWithoutGo(t *testing.T) {
	e := newEnv(t, Options{})
	w := fixture(t, "reactor-wat")
	e.deploy(t, app("wat", deploy.ExecutorReactor, w, "/..."), w)
	for range 3 {
		code, body, h := e.do(t, http.MethodGet, "", "/?name=bench", nil)
		if code != 200 || body != "Hello, bench, from ferry!\n" || h.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %d %q %v", code, body, h)
		}
	}
}

func TestReactorRequestExchange(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	a := app("guest", deploy.ExecutorReactor, g, "/echo", "/users/:id")
	e.deploy(t, a, g)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/echo?a=1", strings.NewReader("payload"))
	req.Header.Set("User-Agent", "ferry-test")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 201 || body != "payload" || resp.Header.Get("X-Method") != "POST" ||
		resp.Header.Get("X-Query") != "a=1" || resp.Header.Get("X-Ua") != "ferry-test" || resp.Header.Get("X-Pattern") != "/echo" {
		t.Errorf("echo: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if code, body := e.get(t, "/users/7"); code != 200 || body != "user=7" {
		t.Errorf("params: %d %q", code, body)
	}
}

// TestReactorResponses: bodies below and above the SDK's buffer, flushes,
// headers set too late, informational and superfluous status codes.
func TestReactorResponses(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	e.deploy(t, app("guest", deploy.ExecutorReactor, g, "/..."), g)
	for _, n := range []int{0, 1, 999, 64 << 10, 64<<10 + 1, 1 << 20} {
		code, body, h := e.do(t, http.MethodGet, "", fmt.Sprintf("/stream?n=%d", n), nil)
		if code != 200 || len(body) != n || strings.Trim(body, "s") != "" {
			t.Errorf("n=%d: status %d, %d bytes", n, code, len(body))
		}
		if h.Get("X-Before") != "yes" || h.Get("X-After") != "" {
			t.Errorf("n=%d: headers %v", n, h)
		}
		if n > 0 && h.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("n=%d: sniffed Content-Type %q", n, h.Get("Content-Type"))
		}
	}
	code, body, h := e.do(t, http.MethodGet, "", "/status", nil)
	if code != http.StatusTeapot || body != "teapot" || h.Get("X-Late") != "" || h.Get("Content-Type") != "text/plain" {
		t.Errorf("/status: %d %q %v", code, body, h)
	}
}

// TestKVCounterAcrossRestart runs examples/kv-counter: the count survives
// requests, a redeploy and a restart of the Runtime on the same StateDir.
func TestKVCounterAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	g := goGuest(t, "examples/kv-counter")
	a := deploy.App{Name: "counter", KeyValueStores: []string{"default"}, Components: []deploy.Component{{
		Name: "counter", Digest: digestOf(g), Executor: deploy.ExecutorReactor, Routes: []string{"/..."},
		KeyValueStores: []string{"default"},
	}}}
	e := newEnv(t, Options{StateDir: dir})
	e.deploy(t, a, g)
	for want := 1; want <= 3; want++ {
		if code, body := e.get(t, "/"); code != 200 || body != fmt.Sprintf("%d\n", want) {
			t.Fatalf("request %d: %d %q", want, code, body)
		}
	}
	e.srv.Close()
	if err := e.rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, Options{StateDir: dir})
	e2.deploy(t, a, g)
	if code, body := e2.get(t, "/"); code != 200 || body != "4\n" {
		t.Fatalf("after restart: %d %q, want 4", code, body)
	}
}

func TestKVOnlyDeclaredStores(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	a := deploy.App{Name: "kv", KeyValueStores: []string{"default", "other"}, Components: []deploy.Component{{
		Name: "c", Digest: digestOf(g), Executor: deploy.ExecutorReactor, Routes: []string{"/..."},
		KeyValueStores: []string{"default"},
	}}}
	e.deploy(t, a, g)
	if code, _, _ := e.do(t, http.MethodPut, "", "/kv/default/k", strings.NewReader("v1")); code != 200 {
		t.Fatalf("set: %d", code)
	}
	if code, body := e.get(t, "/kv/default/k"); code != 200 || body != "v1" {
		t.Errorf("get: %d %q", code, body)
	}
	if code, body, _ := e.do(t, http.MethodPut, "", "/kv/other/k", strings.NewReader("v")); code != 403 || !strings.Contains(body, "denied") {
		t.Errorf("undeclared store: %d %q, want 403 denied", code, body)
	}
	if code, _, _ := e.do(t, http.MethodDelete, "", "/kv/default/k", nil); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := e.get(t, "/kv/default/k"); code != 404 {
		t.Errorf("get after delete: %d", code)
	}
	// A component may not use a store the app does not declare.
	bad := a
	bad.Name = "kv2"
	bad.Components = []deploy.Component{a.Components[0]}
	bad.Components[0].KeyValueStores = []string{"nope"}
	if err := e.rt.Deploy(t.Context(), bad, bundle(g)); !errors.Is(err, ErrInvalidApp) {
		t.Errorf("undeclared app store: err = %v", err)
	}
}

func TestVariablesAndSecrets(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	const secret = "s3cr3t-VALUE-91f"
	a := deploy.App{Name: "vars",
		Variables: map[string]deploy.Variable{"greeting": {Default: strp("hi")}, "token": {Secret: true}},
		Components: []deploy.Component{{
			Name: "c", Digest: digestOf(g), Executor: deploy.ExecutorReactor, Routes: []string{"/..."},
			Variables: map[string]string{"greeting": "{{ greeting }} there", "token": "Bearer {{token}}"},
		}}}
	if err := e.rt.Deploy(t.Context(), a, bundle(g)); !errors.Is(err, ErrMissingVariable) || !strings.Contains(err.Error(), `"token"`) {
		t.Fatalf("deploy without the secret: err = %v, want ErrMissingVariable naming token", err)
	}
	b := bundle(g)
	b.Secrets = map[string]string{"token": secret}
	if err := e.rt.Deploy(t.Context(), a, b); err != nil {
		t.Fatal(err)
	}
	if code, body := e.get(t, "/var/greeting"); code != 200 || body != "hi there" {
		t.Errorf("greeting: %d %q", code, body)
	}
	if code, body := e.get(t, "/var/token"); code != 200 || body != "Bearer "+secret {
		t.Errorf("token: %d %q", code, body)
	}
	if code, _ := e.get(t, "/var/undeclared"); code != 404 {
		t.Errorf("undeclared variable: %d, want 404", code)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "variable read") {
		t.Errorf("guest log line missing; logs:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("secret value found in the logs:\n%s", logs)
	}
	if st, _ := e.rt.App("vars"); strings.Contains(fmt.Sprintf("%+v", st), secret) {
		t.Error("secret value found in the app status")
	}
}

func TestOutboundHTTP(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://localhost:1/elsewhere", http.StatusFound)
			return
		}
		fmt.Fprint(w, "from upstream")
	}))
	defer upstream.Close()
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	allowed := app("allowed", deploy.ExecutorReactor, g, "/...")
	allowed.Hosts = []string{"allowed.test"}
	allowed.Components[0].AllowedOutboundHosts = []string{upstream.URL}
	denied := app("denied", deploy.ExecutorReactor, g, "/...")
	denied.Hosts = []string{"denied.test"}
	e.deploy(t, allowed, g)
	e.deploy(t, denied, g)

	q := "/fetch?url=" + upstream.URL + "/x"
	if code, body, _ := e.do(t, http.MethodGet, "allowed.test", q, nil); code != 200 || body != "200 from upstream" {
		t.Errorf("allowed: %d %q", code, body)
	}
	if code, body, _ := e.do(t, http.MethodGet, "denied.test", q, nil); code != 502 || !strings.Contains(body, "denied") {
		t.Errorf("deny by default: %d %q", code, body)
	}
	// A redirect to an origin that is not allowed is not followed.
	if code, body, _ := e.do(t, http.MethodGet, "allowed.test", "/fetch?url="+upstream.URL+"/redirect", nil); code != 502 || !strings.Contains(body, "denied") {
		t.Errorf("redirect to a denied origin: %d %q", code, body)
	}
	if !strings.Contains(e.logs.String(), "outbound request denied") {
		t.Error("denial not logged")
	}
}

func TestGuestLoggingAndFiles(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	a := app("files", deploy.ExecutorReactor, g, "/...")
	a.Components[0].Files = []string{"data.txt", "static"}
	b := bundle(g)
	b.Files = map[string]fs.FS{"main": fstest.MapFS{
		"data.txt":       {Data: []byte("declared")},
		"hidden.txt":     {Data: []byte("not declared")},
		"static/app.css": {Data: []byte("css")},
	}}
	if err := e.rt.Deploy(t.Context(), a, b); err != nil {
		t.Fatal(err)
	}
	if code, body := e.get(t, "/file/data.txt"); code != 200 || body != "declared" {
		t.Errorf("declared file: %d %q", code, body)
	}
	if code, _ := e.get(t, "/file/hidden.txt"); code != 404 {
		t.Errorf("undeclared file: %d, want 404", code)
	}
	if code, body := e.get(t, "/log"); code != 200 || body != "logged" {
		t.Errorf("log: %d %q", code, body)
	}
	logs := e.logs.String()
	for _, want := range []string{`level=WARN msg="guest says hi n=42" app=files component=main`, "stderr line from the reactor"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestReactorRecycling: an instance serves ReactorMaxRequests requests, then
// its successor — created in the background, not by the next request —
// starts counting again.
func TestReactorRecycling(t *testing.T) {
	e := newEnv(t, Options{ReactorMaxRequests: 3})
	w := fixture(t, "reactor-count")
	e.deploy(t, app("count", deploy.ExecutorReactor, w, "/..."), w)
	e.rt.mu.Lock()
	p := e.rt.apps["count"].cur.comps[0].pool
	e.rt.mu.Unlock()
	idle := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.idle)
	}
	var got []string
	for round := range 3 {
		for range 3 {
			code, body := e.get(t, "/")
			if code != 200 {
				t.Fatalf("status %d", code)
			}
			got = append(got, body)
		}
		// The third request retired the instance; its successor appears
		// in the pool without another request.
		deadline := time.Now().Add(10 * time.Second)
		for idle() != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no successor instance in the pool", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The guest set no Content-Type: the host sniffs one (ABI.md).
	if _, _, h := e.do(t, http.MethodGet, "", "/", nil); h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q, want the sniffed text/plain; charset=utf-8", h.Get("Content-Type"))
	}
	if want := "123123123"; strings.Join(got, "") != want {
		t.Fatalf("answers %q, want %q", strings.Join(got, ""), want)
	}
	if n := e.rt.apps["count"].cur.comps[0].alive.Load(); n != 1 {
		t.Errorf("live instances %d, want 1", n)
	}
}
