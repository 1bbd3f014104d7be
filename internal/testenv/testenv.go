package testenv

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // storage driver for Registry
	"github.com/sirupsen/logrus"
)

// RepoRoot returns the repository's top directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot find own source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Registry starts an in-process CNCF Distribution registry with in-memory
// storage on a 127.0.0.1 port and returns its host:port. It stops when the
// test ends.
func Registry(t testing.TB) string {
	t.Helper()
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}}
	cfg.Log.AccessLog.Disabled = true
	cfg.Log.Level = "error"
	cfg.HTTP.Secret = "ferry-test"
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("testenv: listen: %v", err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close below
	t.Cleanup(func() {
		srv.Close()
		cancel()
	})
	return ln.Addr().String()
}

// Tool returns the path of an external tool built by scripts/testtool.sh
// (for example "cosign-v2.6.5"), building it on first use. The build is
// cached, so only the first run on a machine pays for it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	script := filepath.Join(RepoRoot(t), "scripts", "testtool.sh")
	cmd := exec.Command("bash", script, name)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testenv: building %s with %s: %v", name, script, err)
	}
	return strings.TrimSpace(string(out))
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago, for a separate process that needs its address on the command line.
// It never returns the same port twice in one test process: the kernel
// readily hands a just-closed port out again, and two processes told the
// same port (etcd's client and peer URLs once were) fail to start.
func FreeAddr(t testing.TB) string {
	t.Helper()
	freeMu.Lock()
	defer freeMu.Unlock()
	for range 1000 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: listen: %v", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !freeGiven[addr] {
			freeGiven[addr] = true
			return addr
		}
	}
	t.Fatalf("testenv: no loopback port that was not handed out before in 1,000 tries")
	return ""
}

var (
	freeMu    sync.Mutex
	freeGiven = map[string]bool{}
)

// WaitHTTP polls url until it answers (any status) or the deadline passes.
func WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s did not answer within %v: %v", url, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
