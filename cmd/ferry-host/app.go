package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/single"
)

// appConfig is the parsed command line of `ferry-host app`.
type appConfig struct {
	ref                string
	trustKeys          []string
	insecureSkipVerify bool
	listen, health     string
	stateDir           string
	configDir          string
	secretsDir         string
	registryPlainHTTP  bool
	compileCache       string
	logLevel           slog.Level
	logFormat          string
	reloadInterval     time.Duration
	retryMax           time.Duration
	shutdownTimeout    time.Duration
}

const appUsage = `Usage: ferry-host app --ref REPO@sha256:HEX [--trust-key FILE|DIR]... [flags]

Single-app mode, as a Kubernetes pod runs ferry-host: pulls the one app REF
names, verifies its cosign signature against the trust keys (a directory
means every *.pub file in it), serves it on --listen, and answers health
probes on --health-listen:

  GET /livez    200 while the process runs
  GET /readyz   200 once the app is deployed, verified and healthy; else 503
                with a one-line reason ("signature: ..." when it did not verify)
  GET /metrics  Prometheus metrics

Nothing that did not verify is ever served. A failed pull or verification is
retried with backoff (up to --retry-max) instead of exiting. --config-dir and
--secrets-dir hold one file per variable (a mounted ConfigMap and Secret:
file name = variable name, content = value); they are re-read every
--reload-interval and a change reconfigures the running app in place.
SIGTERM drains in-flight requests (up to --shutdown-timeout) and exits 0.

Example:

  ferry-host app --ref registry.example.com/apps/hello@sha256:4f1c... \
      --trust-key /etc/ferry/trust --config-dir /etc/ferry/config \
      --secrets-dir /etc/ferry/secrets --listen :8080 --health-listen :8081 \
      --state-dir /var/lib/ferry
  curl -s 127.0.0.1:8081/readyz     # ready: hello serves sha256:4f1c...

Flags:
`

func parseAppFlags(args []string, getenv func(string) string, stderr io.Writer) (*appConfig, error) {
	c := &appConfig{}
	fs := flag.NewFlagSet("ferry-host app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, appUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.ref, "ref", "", "the app's artifact, REPO@sha256:HEX (required; by digest only)")
	fs.Var((*stringList)(&c.trustKeys), "trust-key", "PEM public key file, or a directory of *.pub files, trusted to sign the app (repeatable; required unless --insecure-skip-verify)")
	fs.BoolVar(&c.insecureSkipVerify, "insecure-skip-verify", false, "serve the app WITHOUT checking its signature (development only)")
	fs.StringVar(&c.listen, "listen", ":8080", "address of the app's HTTP listener")
	fs.StringVar(&c.health, "health-listen", ":8081", "address of the /livez, /readyz and /metrics listener")
	fs.StringVar(&c.stateDir, "state-dir", defaultStateDir(getenv), "state directory: the deployed app, its key-value stores, compile cache")
	fs.StringVar(&c.configDir, "config-dir", "", "directory of non-secret variable values, one file per variable (a mounted ConfigMap)")
	fs.StringVar(&c.secretsDir, "secrets-dir", "", "directory of secret variable values, one file per variable (a mounted Secret)")
	fs.BoolVar(&c.registryPlainHTTP, "registry-plain-http", false, "talk plain HTTP to the registry (loopback registries always use plain HTTP)")
	fs.StringVar(&c.compileCache, "compile-cache", "", "wazero compilation cache directory (default STATE-DIR/compile-cache)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&c.reloadInterval, "reload-interval", single.DefaultReloadInterval, "how often --config-dir and --secrets-dir are re-read")
	fs.DurationVar(&c.retryMax, "retry-max", single.DefaultRetryMax, "longest wait between failed deploy attempts (the backoff starts at 1s and doubles)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if c.ref == "" {
		return nil, fmt.Errorf("%w: --ref is required (REPO@sha256:HEX)", errUsage)
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, c.logFormat)
	}
	if c.stateDir == "" {
		return nil, fmt.Errorf("%w: --state-dir is required (no home directory to default to)", errUsage)
	}
	if len(c.trustKeys) == 0 && !c.insecureSkipVerify {
		return nil, fmt.Errorf("%w: give at least one --trust-key (or --insecure-skip-verify for development)", errUsage)
	}
	if c.reloadInterval <= 0 || c.retryMax <= 0 {
		return nil, fmt.Errorf("%w: --reload-interval and --retry-max must be positive", errUsage)
	}
	return c, nil
}

// runApp is `ferry-host app`; it returns the exit code like run.
func runApp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseAppFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry-host app: %v\n", err)
		return 2
	}
	log := newLogger(&config{logLevel: c.logLevel, logFormat: c.logFormat}, stderr)
	if err := serveApp(ctx, c, getenv, log, stdout); err != nil {
		log.Error("ferry-host app stopped", "error", err.Error())
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// serveApp builds the single-app host, serves the app and the health
// endpoints until ctx ends, and shuts down gracefully.
func serveApp(ctx context.Context, c *appConfig, getenv func(string) string, log *slog.Logger, stdout io.Writer) error {
	var policy signer.Policy
	if c.insecureSkipVerify {
		log.Warn("!!! SIGNATURE VERIFICATION IS OFF (--insecure-skip-verify): this host serves the artifact signed or not. " +
			"Never use this outside development. !!!")
	} else {
		var err error
		if policy, err = single.PolicyFromPaths(c.trustKeys); err != nil {
			return fmt.Errorf("%w: --trust-key: %w", errUsage, err)
		}
	}
	a, err := single.New(single.Options{
		Ref: c.ref,
		Core: core.Config{
			Runtime: host.Options{
				StateDir:            c.stateDir,
				CompilationCacheDir: c.compileCache,
				Logger:              log,
			},
			StoreDir: c.stateDir,
			Registry: registry.Options{
				Insecure: c.registryPlainHTTP,
				CacheDir: filepath.Join(c.stateDir, "oci-cache"),
				Logger:   log.With("component", "registry"),
				// A pod's process may have no HOME (and so no
				// ~/.docker/config.json to read): then there is none.
				NoDockerConfig: getenv("HOME") == "" && getenv("DOCKER_CONFIG") == "",
			},
			Getenv:             getenv,
			Policy:             policy,
			InsecureSkipVerify: c.insecureSkipVerify,
			Logger:             log.With("component", "core"),
		},
		ConfigDir:      c.configDir,
		SecretsDir:     c.secretsDir,
		ReloadInterval: c.reloadInterval,
		RetryMax:       c.retryMax,
		Logger:         log,
	})
	if errors.Is(err, single.ErrInvalidRef) || errors.Is(err, registry.ErrCredentialHost) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			log.Warn("closing runtime", "error", err.Error())
		}
	}()

	appLn, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer appLn.Close()
	healthLn, err := net.Listen("tcp", c.health)
	if err != nil {
		return fmt.Errorf("--health-listen: %w", err)
	}
	defer healthLn.Close()

	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = a.Run(runCtx) }()
	defer func() { stopRun(); <-runDone }()

	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	appSrv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	healthSrv := &http.Server{Handler: a.HealthHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	errc := make(chan error, 2)
	go func() { errc <- appSrv.Serve(appLn) }()
	go func() { errc <- healthSrv.Serve(healthLn) }()
	fmt.Fprintf(stdout, "ferry-host app: serving %s on http://%s, health on http://%s\n", c.ref, appLn.Addr(), healthLn.Addr())
	log.Info("ferry-host app started", "ref", c.ref, "app", appLn.Addr().String(), "health", healthLn.Addr().String(),
		"verify", !c.insecureSkipVerify, "trust_keys", len(policy.Keys))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", c.shutdownTimeout)
	case serveErr = <-errc:
	}
	stopRun()
	<-runDone
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	rtClosed := make(chan error, 1)
	go func() { rtClosed <- a.Core().Runtime().Close(sctx) }()
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout+3*time.Second)
	defer hcancel()
	err = errors.Join(appSrv.Shutdown(hctx), healthSrv.Shutdown(hctx))
	if cerr := <-rtClosed; cerr != nil {
		log.Warn("closing runtime", "error", cerr.Error())
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(serveErr, err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("ferry-host app stopped cleanly")
	return nil
}
