package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
)

const testToken = "cmd-test-token-9876543210"

var (
	keyOnce sync.Once
	keyPriv *signer.PrivateKey
	keyPub  []byte
	keyErr  error
)

// signingKey returns one cosign key pair for the whole test binary.
func signingKey(t testing.TB) (*signer.PrivateKey, []byte) {
	t.Helper()
	keyOnce.Do(func() {
		var privPEM []byte
		privPEM, keyPub, keyErr = signer.GenerateKeyPair([]byte("pw"))
		if keyErr == nil {
			keyPriv, keyErr = signer.LoadPrivateKey(privPEM, []byte("pw"))
		}
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return keyPriv, keyPub
}

// trustKeyFile writes the public key to a file for --trust-key.
func trustKeyFile(t testing.TB) string {
	t.Helper()
	_, pub := signingKey(t)
	p := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(p, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// publishHello starts an embedded registry (stopped at test end; also
// returned to stop it earlier), pushes the hello-wat example as app name
// and signs it; it returns the registry and REPO@DIGEST.
func publishHello(t testing.TB, name string) (*embedded.Server, string) {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return publishApp(t, name, wasm, nil)
}

// publishApp is publishHello for any module; edit, when set, changes the
// component before the push.
func publishApp(t testing.TB, name string, wasm []byte, edit func(*deploy.Component)) (*embedded.Server, string) {
	t.Helper()
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	app := deploy.App{
		Name:  name,
		Hosts: []string{name + ".localhost"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Limits: deploy.Limits{MemoryBytes: 1 << 20, Timeout: deploy.Duration(2 * time.Second)},
			Health: &deploy.Health{Path: "/healthz"},
		}},
	}
	if edit != nil {
		edit(&app.Components[0])
	}
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rc.PushApp(context.Background(), reg.Addr()+"/apps/"+name, app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := signingKey(t)
	if _, err := signer.Sign(context.Background(), res.Ref, priv, signer.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	return reg, res.Ref
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
	binDir  string
)

// buildHost builds ferry-host for goos/goarch (goarm for arm) once per test
// binary and returns its path.
func buildHost(t testing.TB, goarch, goarm string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := goarch + goarm
	if p, ok := built[key]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "ferry-host-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	out := filepath.Join(binDir, "ferry-host-"+key)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./cmd/ferry-host")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm)
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ferry-host for %s: %v\n%s", key, err, msg)
	}
	fi, _ := os.Stat(out)
	t.Logf("built ferry-host linux/%s%s in %v: %.1f MB", goarch, goarm, time.Since(start).Round(time.Second), float64(fi.Size())/1e6)
	built[key] = out
	return out
}

// hostProc is a running ferry-host process.
type hostProc struct {
	cmd     *exec.Cmd
	appsURL string
	ctlURL  string
	stderr  *testenv.Buffer
	done    chan error
}

var servingRE = regexp.MustCompile(`^ferry-host: serving apps on (http://\S+), control on (https?://\S+)$`)

// startHost runs argv (the binary, possibly behind qemu) with the token in
// FERRY_HOST_TOKEN and waits up to within for its "serving" line.
func startHost(t testing.TB, within time.Duration, argv ...string) *hostProc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "FERRY_HOST_TOKEN="+testToken)
	proc, m := testenv.StartProcess(t, cmd, servingRE, within)
	return &hostProc{cmd: cmd, stderr: proc.Stderr, done: proc.Done, appsURL: m[1], ctlURL: m[2]}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *hostProc) stop(t testing.TB, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("ferry-host exited with %v after SIGTERM:\n%s", err, p.stderr.String())
		}
	case <-time.After(within):
		t.Fatalf("ferry-host still running %v after SIGTERM", within)
	}
}

// getApp requests path from the app listener with Host header host.
func getApp(t testing.TB, base, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s%s (Host %s): %v", base, path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantHello(t testing.TB, base, host string) {
	t.Helper()
	code, body := getApp(t, base, host, "/")
	if code != http.StatusOK || !strings.Contains(body, "Hello from WAT on ferry!") {
		t.Fatalf("GET http://%s/ via %s = %d %q", host, base, code, body)
	}
}

// TestMain removes the binaries buildHost made.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
