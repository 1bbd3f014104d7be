package device

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/core"
)

// Config is a whole device-mode ferry-host: the protocol side (Device;
// Start fills its Core, SecretHashKey and DataDir) and the host it drives.
type Config struct {
	// Device configures the protocol side. Device.Core and
	// Device.SecretHashKey are set by Start; Device.DataDir is DataDir.
	Device Options
	// DataDir is the device's data directory: the credential
	// (CredentialFile) and, under "host", the host core's state (deployed
	// versions, modules, values, key-value stores, the OCI cache, the
	// compilation cache). Required.
	DataDir string
	// Listen is the address the apps are served on. Empty means ":8080".
	Listen string
	// Policy is the device's own trust policy: every artifact must be
	// signed under it. Required (a device never runs unsigned code).
	Policy signer.Policy
	// RegistryPlainHTTP talks plain HTTP to every registry (loopback
	// registries always use plain HTTP).
	RegistryPlainHTTP bool
	// Getenv reads the registry login (registry.EnvCredentials). Nil
	// means none.
	Getenv func(string) string
	// Runtime tunes the runtime; StateDir, CompilationCacheDir and Logger
	// are set by Start.
	Runtime host.Options
	// ShutdownTimeout bounds the drain of in-flight requests at Close.
	// Zero means 10 s.
	ShutdownTimeout time.Duration
	// Logger receives every log line. Nil discards.
	Logger *slog.Logger
	// NoTrim keeps the memory a start-up or a deploy touched resident.
	// By default the device gives the Go heap's free pages back to the
	// system and drops the executable's pages from its resident set once
	// the recorded apps are restored and after every round that changed an
	// app (trim.go), so that an idle device holds what it uses.
	NoTrim bool
}

// Host is a running device-mode ferry-host: the host core serving its
// apps on a listener, and the Device loop beside it. Create it with
// Start; stop it with Close.
type Host struct {
	cfg     Config
	core    *core.Core
	ln      net.Listener
	srv     *http.Server
	dev     *Device
	log     *slog.Logger
	cancel  context.CancelFunc
	devErr  error         // the device loop's result, once devDone is closed
	devDone chan struct{} // closed when the device loop returned
	served  chan error
	health  chan struct{}
}

// Start opens the host core in DataDir/host, restores every app recorded
// there — from the data directory alone, re-verifying the cached
// signatures against Policy, so a device that lost power comes back to
// its last good state without any network —, serves the apps on Listen,
// starts the health prober, and runs the Device loop (enroll once, poll,
// apply, report) in the background. A restore failure of one app is
// logged and reported, not fatal.
func Start(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("device: no data directory")
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("device: trust policy: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8080"
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	// Check the server URL before anything else happens.
	if _, err := CheckServerURL(cfg.Device.Server); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	hostDir := filepath.Join(cfg.DataDir, "host")
	rtOpts := cfg.Runtime
	rtOpts.StateDir = hostDir
	if rtOpts.CompilationCacheDir == "" {
		rtOpts.CompilationCacheDir = filepath.Join(hostDir, "compile-cache")
	}
	rtOpts.Logger = log.With("component", "runtime")
	c, err := core.Open(core.Config{
		Runtime:  rtOpts,
		StoreDir: hostDir,
		Registry: registry.Options{
			Insecure: cfg.RegistryPlainHTTP,
			CacheDir: filepath.Join(hostDir, "oci-cache"),
			Logger:   log.With("component", "registry"),
		},
		Getenv:        cfg.Getenv,
		Policy:        cfg.Policy,
		SecretHashKey: key,
		Logger:        log.With("component", "core"),
	})
	if err != nil {
		return nil, err
	}
	closeCore := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		_ = c.Close(cctx)
	}
	dopts := cfg.Device
	dopts.Core, dopts.SecretHashKey, dopts.DataDir = c, key, cfg.DataDir
	if dopts.Logger == nil {
		dopts.Logger = log.With("component", "device")
	}
	if !cfg.NoTrim {
		after := dopts.AfterChange
		dopts.AfterChange = func() {
			if after != nil {
				after()
			}
			trimMemory()
		}
	}
	dev, err := New(dopts)
	if err != nil {
		closeCore()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		closeCore()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}

	start := time.Now()
	rep := c.Restore(ctx)
	for name, err := range rep.Failed {
		log.Error("app could not be restored", "app", name, "error", err.Error())
	}
	log.Info("state restored", "dir", hostDir, "serving", len(rep.Serving), "failed", len(rep.Failed), "took", time.Since(start).Round(time.Millisecond))
	if !cfg.NoTrim {
		trimMemory()
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &Host{cfg: cfg, core: c, ln: ln, dev: dev, log: log, cancel: cancel,
		devDone: make(chan struct{}), served: make(chan error, 1), health: make(chan struct{})}
	h.srv = &http.Server{Handler: c.Runtime(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() { h.served <- h.srv.Serve(ln) }()
	go func() { defer close(h.health); c.RunHealth(runCtx) }() //nolint:errcheck // nil when runCtx ends
	go func() { defer close(h.devDone); h.devErr = dev.Run(runCtx) }()
	return h, nil
}

// Addr is the address the apps are served on.
func (h *Host) Addr() net.Addr { return h.ln.Addr() }

// Core is the host core the device drives.
func (h *Host) Core() *core.Core { return h.core }

// Device is the protocol side.
func (h *Host) Device() *Device { return h.dev }

// Done receives the device loop's error if it stops by itself (it cannot
// get an identity: see Device.Run), or the app server's if it fails. The
// apps keep serving until Close either way.
func (h *Host) Done() <-chan error {
	out := make(chan error, 1)
	go func() {
		select {
		case <-h.devDone:
			if h.devErr != nil {
				out <- h.devErr
			}
		case err := <-h.served:
			out <- fmt.Errorf("serving apps: %w", err)
		}
	}()
	return out
}

// Close stops the device loop and the prober, drains in-flight requests
// (within Config.ShutdownTimeout; then the guests still running are
// stopped) and closes the runtime.
func (h *Host) Close(ctx context.Context) error {
	h.cancel()
	<-h.health
	<-h.devDone
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.ShutdownTimeout)
	defer cancel()
	rtClosed := make(chan error, 1)
	go func() { rtClosed <- h.core.Close(sctx) }()
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.ShutdownTimeout+3*time.Second)
	defer hcancel()
	err := h.srv.Shutdown(hctx)
	if cerr := <-rtClosed; cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}
