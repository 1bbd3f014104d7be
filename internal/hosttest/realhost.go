package hosttest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// Host is an in-process ferry-host: the wazero runtime, its state store,
// a registry client and the control API, serving apps (apps) and the control
// API (ctl) on loopback. It stops when the test ends, or at close.
type Host struct {
	tb     testing.TB
	rt     *host.Runtime
	Srv    *control.Server
	Apps   *httptest.Server
	Ctl    *httptest.Server
	Client *driver.Client // with token
	once   gosync.Once

	stopHealth func()        // ends RunHealth
	healthDone chan struct{} // closed when RunHealth returned
}

// Start starts a host whose control API takes token. It verifies
// every app against policy; an empty policy runs apps without checking
// signatures (for tests about something else).
func Start(tb testing.TB, policy signer.Policy, token string) *Host {
	tb.Helper()
	dir := tb.TempDir()
	rt, err := host.New(host.Options{StateDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	h := &Host{tb: tb, rt: rt}
	tb.Cleanup(h.Close)
	st, err := state.Open(filepath.Join(dir, "state"))
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := registry.New(registry.Options{CacheDir: filepath.Join(dir, "oci"), NoDockerConfig: true})
	if err != nil {
		tb.Fatal(err)
	}
	unsigned := len(policy.Keys) == 0 && len(policy.Identities) == 0
	h.Srv, err = control.NewServer(control.Options{Runtime: rt, Store: st, Registry: rc, Policy: policy, InsecureSkipVerify: unsigned, Token: token})
	if err != nil {
		tb.Fatal(err)
	}
	// Health probes after deploy, as ferry-host runs them.
	hctx, stop := context.WithCancel(context.Background())
	h.stopHealth, h.healthDone = stop, make(chan struct{})
	go func() { defer close(h.healthDone); h.Srv.RunHealth(hctx) }() //nolint:errcheck // nil on cancel
	h.Apps, h.Ctl = httptest.NewServer(rt), httptest.NewServer(h.Srv)
	h.Client, err = driver.NewClient(h.Ctl.URL, token, driver.ClientOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// Close stops the listeners and the runtime (once).
func (h *Host) Close() {
	h.once.Do(func() {
		if h.stopHealth != nil {
			h.stopHealth()
			<-h.healthDone
		}
		if h.Ctl != nil {
			h.Ctl.Close()
			h.Apps.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.rt.Close(ctx); err != nil {
			h.tb.Errorf("closing the runtime: %v", err)
		}
	})
}
