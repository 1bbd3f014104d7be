package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/core"
)

// run is the whole program; it returns the exit code: 0 after a clean
// stop, 1 on a failure, 2 on a command-line mistake. A first argument
// naming a mode runs that mode ("app": single-app mode, app.go); without
// one it is the multi-app daemon with its control API.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "app":
			return runApp(ctx, args[1:], getenv, stdout, stderr)
		case "device":
			return runDevice(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	c, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry-host: %v\n", err)
		return 2
	}
	log := newLogger(c, stderr)
	if err := serve(ctx, c, getenv, log, stdout); err != nil {
		log.Error("ferry-host stopped", "error", err.Error())
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.logLevel}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// serve builds the host (control.NewHost: the runtime, the state
// directory, the registry client, verification and metrics, and the
// control API), restores the recorded apps, serves until ctx ends and
// shuts down gracefully.
func serve(ctx context.Context, c *config, getenv func(string) string, log *slog.Logger, stdout io.Writer) error {
	token, err := c.readToken(getenv)
	if err != nil {
		return err
	}
	var policy signer.Policy
	if c.insecureSkipVerify {
		log.Warn("!!! SIGNATURE VERIFICATION IS OFF (--insecure-skip-verify): this host runs ANY artifact it is told to, " +
			"signed or not. Never use this outside development. !!!")
	} else {
		if policy, err = signer.PolicyFromFiles(c.trustKeys); err != nil {
			return fmt.Errorf("%w: --trust-key: %w", errUsage, err)
		}
	}
	ctlTLS, err := c.tlsConfig()
	if err != nil {
		return err
	}
	if ctlTLS == nil {
		if err := requireLoopback(c.control); err != nil {
			return err
		}
	}

	ctl, err := control.NewHost(core.Config{
		Runtime: host.Options{
			StateDir:            c.stateDir,
			CompilationCacheDir: c.compileCache,
			Logger:              log,
			NoDeployGC:          !c.deployGC,
			GCBallast:           c.gcBallast(),
			CompileWorkers:      c.compileWorkers,
			MemoryBudget:        int64(c.memoryBudget),
			CPUSlots:            c.cpuSlots,
		},
		StoreDir: c.stateDir,
		Registry: registry.Options{
			Insecure: c.registryPlainHTTP,
			CacheDir: filepath.Join(c.stateDir, "oci-cache"),
			Logger:   log.With("component", "registry"),
		},
		Getenv:             getenv,
		Policy:             policy,
		InsecureSkipVerify: c.insecureSkipVerify,
		Logger:             log.With("component", "control"),
	}, token)
	if errors.Is(err, registry.ErrCredentialHost) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	rt := ctl.Runtime()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
		defer cancel()
		if err := ctl.Close(cctx); err != nil {
			log.Warn("closing runtime", "error", err.Error())
		}
	}()

	appLn, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer appLn.Close()
	ctlLn, err := net.Listen("tcp", c.control)
	if err != nil {
		return fmt.Errorf("--control: %w", err)
	}
	defer ctlLn.Close()

	start := time.Now()
	rep := ctl.Restore(ctx)
	for name, err := range rep.Failed {
		log.Error("app could not be restored; it is listed as failed until it is put again", "app", name, "error", err.Error())
	}
	log.Info("state restored", "dir", c.stateDir, "serving", len(rep.Serving), "failed", len(rep.Failed), "took", time.Since(start))

	// Health probes after deploy, and rollbacks within a version's bake.
	healthCtx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); ctl.RunHealth(healthCtx) }() //nolint:errcheck // nil when healthCtx ends
	defer func() { stopHealth(); <-healthDone }()

	appSrv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	ctlSrv := &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: ctlTLS, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 2)
	go func() { errc <- appSrv.Serve(appLn) }()
	ctlScheme := "http"
	if ctlTLS != nil {
		ctlScheme = "https"
		go func() { errc <- ctlSrv.ServeTLS(ctlLn, "", "") }()
	} else {
		go func() { errc <- ctlSrv.Serve(ctlLn) }()
	}
	fmt.Fprintf(stdout, "ferry-host: serving apps on http://%s, control on %s://%s\n", appLn.Addr(), ctlScheme, ctlLn.Addr())
	log.Info("ferry-host started", "apps", appLn.Addr().String(), "control", ctlLn.Addr().String(),
		"verify", !c.insecureSkipVerify, "trust_keys", len(policy.Keys), "mtls", c.clientCA != "")

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", c.shutdownTimeout)
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	// The runtime stops the guests still running when the shutdown timeout
	// is up (whatever they do); the servers wait a little longer, for the
	// handlers of those requests to answer 503.
	rtClosed := make(chan error, 1)
	go func() { rtClosed <- rt.Close(sctx) }()
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout+3*time.Second)
	defer hcancel()
	err = errors.Join(ctlSrv.Shutdown(hctx), appSrv.Shutdown(hctx))
	if cerr := <-rtClosed; cerr != nil {
		log.Warn("closing runtime", "error", cerr.Error())
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(serveErr, err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("ferry-host stopped cleanly")
	return nil
}

// tlsConfig builds the control listener's TLS configuration; nil means
// plain HTTP.
func (c *config) tlsConfig() (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.clientCA != "" {
		pem, err := os.ReadFile(c.clientCA)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca %s: no PEM certificates", c.clientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// requireLoopback refuses a plain-HTTP control listener on a non-loopback
// address: the bearer token would cross the network in clear.
func requireLoopback(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: --control %q: %v", errUsage, addr, err)
	}
	if h == "localhost" {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: --control %s is not a loopback address: serving the control API there needs --tls-cert and --tls-key", errUsage, addr)
}
