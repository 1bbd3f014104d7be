package control_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

const testToken = "s3cret-test-token-0123456789"

// keyPair is a signing key and its public half as a policy key.
type keyPair struct {
	priv *signer.PrivateKey
	pub  signer.Key
	pem  []byte
}

var (
	keysOnce sync.Once
	keys     [2]keyPair
	keysErr  error
)

// testKeys returns two cosign key pairs (trusted, other), made once per
// test binary (scrypt makes them slow).
func testKeys(t testing.TB) (trusted, other keyPair) {
	t.Helper()
	keysOnce.Do(func() {
		for i := range keys {
			privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
			if err != nil {
				keysErr = err
				return
			}
			priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
			if err != nil {
				keysErr = err
				return
			}
			pub, err := signer.LoadPublicKey(pubPEM)
			if err != nil {
				keysErr = err
				return
			}
			keys[i] = keyPair{priv: priv, pub: signer.Key{Name: fmt.Sprintf("key%d", i), Public: pub}, pem: pubPEM}
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys[0], keys[1]
}

// helloWasm is the committed hello-wat example module.
func helloWasm(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// variant returns hello.wasm answering with a different greeting of the
// same length ("Hallo", "Hullo", ...), so versions can be told apart by
// their responses.
func variant(t testing.TB, greeting string) []byte {
	t.Helper()
	if len(greeting) != len("Hello") {
		t.Fatalf("variant greeting %q must have 5 letters", greeting)
	}
	b := helloWasm(t)
	out := bytes.Replace(b, []byte("Hello from WAT"), []byte(greeting+" from WAT"), 1)
	if bytes.Equal(out, b) && greeting != "Hello" {
		t.Fatal("hello.wasm no longer contains its greeting")
	}
	return out
}

// helloApp is a one-component WAGI app served for host name <name>.test.
func helloApp(name string) deploy.App {
	return deploy.App{
		Name:  name,
		Hosts: []string{name + ".test"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Health: &deploy.Health{Path: "/healthz"},
		}},
	}
}

// world is one host under test: a registry, the runtime, the state
// directory, the control server, the app and control listeners.
type world struct {
	t        testing.TB
	reg      *proxy
	regAddr  string
	pusher   *registry.Client
	stateDir string
	cacheDir string
	rt       *host.Runtime
	srv      *control.Server
	apps     *httptest.Server
	ctl      *httptest.Server
	client   *driver.Client
	logs     *testenv.Buffer
	policy   signer.Policy
	metrics  *prometheus.Registry
}

// newWorld starts a registry and a host trusting policy.
func newWorld(t testing.TB, policy signer.Policy) *world {
	t.Helper()
	w := &world{t: t, stateDir: t.TempDir(), cacheDir: t.TempDir(), policy: policy}
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	// Everyone reaches the registry through a proxy the test can cut at
	// once, connections and all ("the registry is down").
	w.reg = newProxy(t, reg.Addr())
	w.regAddr = w.reg.Addr()
	w.pusher, err = registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	w.start()
	t.Cleanup(w.stop)
	return w
}

// start brings up a runtime and control server on w.stateDir and restores.
func (w *world) start() core.RestoreReport {
	t := w.t
	t.Helper()
	w.logs = &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.metrics = prometheus.NewRegistry()
	rt, err := host.New(host.Options{StateDir: w.stateDir, CompilationCacheDir: w.cacheDir, Logger: log, Metrics: w.metrics})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.New(registry.Options{CacheDir: filepath.Join(w.stateDir, "oci-cache"), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := control.NewServer(control.Options{
		Runtime: rt, Store: st, Registry: rc, Policy: w.policy, Token: testToken, Logger: log, Metrics: w.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := srv.Restore(context.Background())
	w.rt, w.srv = rt, srv
	w.apps = httptest.NewServer(rt)
	w.ctl = httptest.NewServer(srv)
	w.client, err = driver.NewClient(w.ctl.URL, testToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// stop shuts the host down (not the registry).
func (w *world) stop() {
	if w.rt == nil {
		return
	}
	w.ctl.Close()
	w.apps.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.rt.Close(ctx); err != nil {
		w.t.Errorf("closing runtime: %v", err)
	}
	w.rt = nil
}

// push stores app with module wasm in the registry under repo and returns
// REPO@DIGEST.
func (w *world) push(repo string, app deploy.App, wasm []byte) string {
	w.t.Helper()
	res, err := w.pusher.PushApp(context.Background(), w.regAddr+"/"+repo, app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		w.t.Fatalf("push: %v", err)
	}
	return res.Ref
}

// sign signs ref with k.
func (w *world) sign(ref string, k keyPair) {
	w.t.Helper()
	if _, err := signer.Sign(context.Background(), ref, k.priv, signer.SignOptions{}); err != nil {
		w.t.Fatalf("sign %s: %v", ref, err)
	}
}

// get requests path from the app listener with Host header host and
// returns status and body.
func (w *world) get(host, path string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.apps.URL+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wantServes fails unless host answers 200 with a body containing want.
func (w *world) wantServes(host, want string) {
	w.t.Helper()
	code, body := w.get(host, "/")
	if code != http.StatusOK || !strings.Contains(body, want) {
		w.t.Fatalf("GET http://%s/ = %d %q, want 200 with %q", host, code, body, want)
	}
}

func digestOf(ref string) string {
	_, d, _ := strings.Cut(ref, "@")
	return d
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// proxy is a loopback TCP proxy that can be cut: Close stops accepting and
// drops every open connection.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr is the proxy's host:port.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// Close cuts the proxy.
func (p *proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return err
}
