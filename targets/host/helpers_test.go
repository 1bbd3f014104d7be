package host

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
)

// fixture returns the bytes of testdata/<name>.wasm (built from <name>.wat
// by testdata/build.sh).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		t.Fatalf("fixture %s: %v (run targets/host/testdata/build.sh)", name, err)
	}
	return b
}

var (
	goBuildMu  sync.Mutex
	goBuilt    = map[string][]byte{}
	goBuildDir string
)

// goGuest builds the Go reactor guest in dir (relative to the repository
// root) once per test binary run.
func goGuest(t testing.TB, dir string) []byte {
	t.Helper()
	goBuildMu.Lock()
	defer goBuildMu.Unlock()
	if b, ok := goBuilt[dir]; ok {
		return b
	}
	if goBuildDir == "" {
		d, err := os.MkdirTemp("", "ferry-host-guests-")
		if err != nil {
			t.Fatal(err)
		}
		goBuildDir = d
	}
	out := filepath.Join(goBuildDir, strings.ReplaceAll(dir, "/", "_")+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, "./"+dir)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	goBuilt[dir] = b
	return b
}

var cacheDir string

func sharedCacheDir(t testing.TB) string {
	goBuildMu.Lock()
	defer goBuildMu.Unlock()
	if cacheDir == "" {
		d, err := os.MkdirTemp("", "ferry-host-cache-")
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = d
	}
	return cacheDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	if goBuildDir != "" {
		os.RemoveAll(goBuildDir)
	}
	os.Exit(code)
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

type env struct {
	rt   *Runtime
	srv  *httptest.Server
	logs *testenv.Buffer
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	logs := &testenv.Buffer{}
	if opts.CompilationCacheDir == "" {
		// One cache for the whole test binary keeps Go guests from being
		// compiled again by every test.
		opts.CompilationCacheDir = sharedCacheDir(t)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{rt: rt, srv: srv, logs: logs}
}

// app returns a one-component app serving wasm on routes.
func app(name string, exec deploy.Executor, wasm []byte, routes ...string) deploy.App {
	return deploy.App{Name: name, Components: []deploy.Component{{
		Name: "main", Digest: digestOf(wasm), Executor: exec, Routes: routes,
	}}}
}

func (e *env) deploy(t testing.TB, a deploy.App, wasm ...[]byte) {
	t.Helper()
	if err := e.rt.Deploy(context.Background(), a, bundle(wasm...)); err != nil {
		t.Fatalf("Deploy %s: %v", a.Name, err)
	}
}

func bundle(wasm ...[]byte) Bundle {
	b := Bundle{Modules: map[string][]byte{}}
	for _, w := range wasm {
		b.Modules[digestOf(w)] = w
	}
	return b
}

// do sends a request and returns status, body and headers.
func (e *env) do(t testing.TB, method, host, path string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func (e *env) get(t testing.TB, path string) (int, string) {
	t.Helper()
	code, body, _ := e.do(t, http.MethodGet, "", path, nil)
	return code, body
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
