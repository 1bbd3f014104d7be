package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
)

// wasmModule returns a valid, tiny Wasm module whose custom section holds
// payload, so different payloads give different digests.
func wasmModule(payload string) []byte {
	name := "ferry"
	sec := append([]byte{byte(len(name))}, name...)
	sec = append(sec, payload...)
	var out bytes.Buffer
	out.Write([]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}) // magic, version 1
	out.WriteByte(0)                                                  // custom section
	n := len(sec)
	for { // LEB128 size
		b := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			out.WriteByte(b | 0x80)
			continue
		}
		out.WriteByte(b)
		break
	}
	out.Write(sec)
	return out.Bytes()
}

func str(s string) *string { return &s }

// testApp returns a two-component app and its modules; version changes the
// module bytes of "api".
func testApp(version string) (deploy.App, map[string][]byte) {
	app := deploy.App{
		Name:  "hello",
		Hosts: []string{"hello.example.com"},
		Components: []deploy.Component{
			{
				Name: "web", Routes: []string{"/"}, Env: map[string]string{"MODE": "prod", "A": "1"},
				Limits: deploy.Limits{MemoryBytes: 16 << 20, Timeout: deploy.Duration(5 * time.Second)},
			},
			{
				Name: "api", Executor: deploy.ExecutorReactor, Routes: []string{"/api/..."},
				KeyValueStores: []string{"default"}, Variables: map[string]string{"greeting": "{{ greeting }}"},
				Health: &deploy.Health{Path: "/api/health"},
			},
		},
		Variables: map[string]deploy.Variable{
			"greeting": {Default: str("hi")},
			"token":    {Secret: true},
		},
		KeyValueStores: []string{"default"},
	}
	modules := map[string][]byte{
		"web": wasmModule("web module " + strings.Repeat("w", 3000)),
		"api": wasmModule("api module " + version + strings.Repeat("a", 5000)),
	}
	return app, modules
}

func newClient(t testing.TB, opts registry.Options) *registry.Client {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	opts.NoDockerConfig = opts.NoDockerConfig || opts.DockerConfig == ""
	c, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startServer runs the embedded registry (filesystem storage) for the test.
func startServer(t testing.TB) *embedded.Server {
	t.Helper()
	s, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startExternalRegistry runs CNCF Distribution v3.1.2 as a separate process
// with filesystem storage and returns its address.
func startExternalRegistry(t testing.TB) string {
	t.Helper()
	bin := testenv.Tool(t, "registry-v3.1.2")
	addr := testenv.FreeAddr(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: ferry-test-secret
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		<-exited
		if t.Failed() {
			t.Logf("registry process output:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("registry process exited early:\n%s", logs.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry process did not answer on %s within 20s", addr)
		}
	}
	return addr
}

// proxy is a loopback reverse proxy in front of a registry that counts the
// requests it forwards and may rewrite responses.
type proxy struct {
	Addr string
	mu   sync.Mutex
	reqs map[string]int // by method
	// tamper, if set, may rewrite a response body (same headers are kept,
	// Content-Length is fixed up).
	tamper func(req *http.Request, body []byte) []byte
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{reqs: map[string]int{}}
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		tamper := p.tamper
		p.mu.Unlock()
		if tamper == nil || resp.Request.Method != http.MethodGet {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = tamper(resp.Request, body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs[r.Method]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p.Addr = ln.Addr().String()
	return p
}

// writes returns the number of PUT, POST and PATCH requests seen.
func (p *proxy) writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs[http.MethodPut] + p.reqs[http.MethodPost] + p.reqs[http.MethodPatch]
}

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = map[string]int{}
}

func (p *proxy) setTamper(f func(req *http.Request, body []byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}
