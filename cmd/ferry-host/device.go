package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/fleet/device"
	"github.com/ferry-wasm/ferry/targets/host"
)

// deviceConfig is the parsed command line of `ferry-host device`.
type deviceConfig struct {
	server, enrollToken string
	enrollTokenFile     string
	labels              map[string]string
	name                string
	dataDir             string
	trustKeys           []string
	caFile              string
	listen              string
	registryPlainHTTP   bool
	wait, heartbeat     time.Duration
	backoffMax          time.Duration
	shutdownTimeout     time.Duration
	logLevel            slog.Level
	logFormat           string
	gcBallastMiB        int64
	memoryLimit         byteSize
	noTrim              bool
}

func parseDeviceFlags(args []string, getenv func(string) string, stderr io.Writer) (*deviceConfig, error) {
	c := &deviceConfig{}
	fs := flag.NewFlagSet("ferry-host device", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry-host device --server URL --enroll-token TOKEN --data-dir DIR --trust-key FILE [flags]\n\n"+
			"Runs ferry-host as an edge device of a fleet: enrolls once, then dials out only — long-polls its desired\n"+
			"state, verifies, deploys and serves the apps, reports status — and keeps serving while the server is away. Flags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.server, "server", "", "device server URL: https://..., or http:// to a loopback address only")
	fs.StringVar(&c.enrollToken, "enroll-token", "", "enrollment token (used once, when DIR holds no credential; default $FERRY_ENROLL_TOKEN)")
	fs.StringVar(&c.enrollTokenFile, "enroll-token-file", "", "file holding the enrollment token (keeps it out of the process list)")
	labels := fs.String("labels", "", "the device's labels, k=v,k2=v2 (sent at enrollment)")
	fs.StringVar(&c.name, "name", "", "the device's name for the server (default: the hostname)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory: the device credential (0600) and the deployed apps (required)")
	fs.Var((*stringList)(&c.trustKeys), "trust-key", "PEM public key file trusted to sign apps, or a directory of *.pub files (repeatable; required)")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM CA bundle trusted for the server's certificate, besides the system roots")
	fs.StringVar(&c.listen, "listen", ":8080", "address of the app HTTP listener")
	fs.BoolVar(&c.registryPlainHTTP, "registry-plain-http", false, "talk plain HTTP to every registry (loopback registries always use plain HTTP)")
	fs.DurationVar(&c.wait, "poll-wait", 30*time.Second, "how long the server may hold a desired-state poll when nothing changed (at most 5m)")
	fs.DurationVar(&c.heartbeat, "heartbeat", device.DefaultHeartbeat, "how often the device reports when nothing changed")
	fs.DurationVar(&c.backoffMax, "backoff-max", device.DefaultBackoffMax, "longest wait between two tries while the server is unreachable (exponential from 1s, with jitter)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.Int64Var(&c.gcBallastMiB, "gc-ballast-mib", 0, "MiB of heap ballast (see ferry-host --help); none by default on a device, where memory counts more than the collector's CPU")
	fs.Var(&c.memoryLimit, "memory-limit", "soft limit of the Go runtime's memory (e.g. 64MiB): near it the collector runs more often (0: $GOMEMLIMIT, else none)")
	fs.BoolVar(&c.noTrim, "no-trim", false, "keep resident what start-up and deploys touched (by default the device returns the Go heap's free pages and drops the binary's pages from its resident set after start-up and after each change to its apps)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if c.gcBallastMiB < 0 {
		return nil, fmt.Errorf("%w: --gc-ballast-mib %d: want 0 or more", errUsage, c.gcBallastMiB)
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, c.logFormat)
	}
	var err error
	if c.labels, err = device.ParseLabels(*labels); err != nil {
		return nil, fmt.Errorf("%w: --labels: %v", errUsage, err)
	}
	switch {
	case c.enrollToken != "" && c.enrollTokenFile != "":
		return nil, fmt.Errorf("%w: give --enroll-token or --enroll-token-file, not both", errUsage)
	case c.enrollTokenFile != "":
		b, err := os.ReadFile(c.enrollTokenFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --enroll-token-file: %v", errUsage, err)
		}
		if c.enrollToken = strings.TrimSpace(string(b)); c.enrollToken == "" {
			return nil, fmt.Errorf("%w: --enroll-token-file %s is empty", errUsage, c.enrollTokenFile)
		}
	case c.enrollToken == "":
		c.enrollToken = strings.TrimSpace(getenv("FERRY_ENROLL_TOKEN"))
	}
	switch {
	case c.server == "":
		return nil, fmt.Errorf("%w: --server is required", errUsage)
	case c.dataDir == "":
		return nil, fmt.Errorf("%w: --data-dir is required", errUsage)
	case len(c.trustKeys) == 0:
		return nil, fmt.Errorf("%w: give at least one --trust-key: a device runs only apps signed by a key it trusts", errUsage)
	case c.wait <= 0 || c.heartbeat <= 0 || c.backoffMax <= 0:
		return nil, fmt.Errorf("%w: --poll-wait, --heartbeat and --backoff-max must be positive", errUsage)
	}
	if _, err := device.CheckServerURL(c.server); err != nil {
		return nil, fmt.Errorf("%w: --server: %w", errUsage, err)
	}
	return c, nil
}

// gcBallast is host.Options.GCBallast for the device's --gc-ballast-mib:
// none unless asked for.
func (c *deviceConfig) gcBallast() int64 {
	if c.gcBallastMiB <= 0 {
		return -1
	}
	return c.gcBallastMiB << 20
}

// trustKeyFiles expands each directory of paths into its *.pub files.
func trustKeyFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.pub"))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("%s holds no *.pub file", p)
		}
		out = append(out, m...)
	}
	return out, nil
}

// hostVersion is the module version ferry-host was built from.
func hostVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// runDevice is `ferry-host device`; it returns the exit code.
func runDevice(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseDeviceFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry-host device: %v\n", err)
		return 2
	}
	o := &slog.HandlerOptions{Level: c.logLevel}
	var log *slog.Logger
	if c.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, o))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, o))
	}
	if err := serveDevice(ctx, c, getenv, log, stdout); err != nil {
		log.Error("ferry-host device stopped", "error", err.Error())
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func serveDevice(ctx context.Context, c *deviceConfig, getenv func(string) string, log *slog.Logger, stdout io.Writer) error {
	files, err := trustKeyFiles(c.trustKeys)
	if err != nil {
		return fmt.Errorf("%w: --trust-key: %w", errUsage, err)
	}
	policy, err := signer.PolicyFromFiles(files)
	if err != nil {
		return fmt.Errorf("%w: --trust-key: %w", errUsage, err)
	}
	hc, err := device.NewHTTPClient(c.caFile)
	if err != nil {
		return fmt.Errorf("%w: --ca-file: %w", errUsage, err)
	}
	if c.memoryLimit > 0 {
		debug.SetMemoryLimit(int64(c.memoryLimit))
	}

	h, err := device.Start(ctx, device.Config{
		Device: device.Options{
			Server: c.server, HTTPClient: hc, EnrollToken: c.enrollToken, Name: c.name, Labels: c.labels,
			Version: hostVersion(), Wait: c.wait, Heartbeat: c.heartbeat,
			Backoff: device.Backoff{Max: c.backoffMax},
		},
		DataDir:           c.dataDir,
		Listen:            c.listen,
		Policy:            policy,
		RegistryPlainHTTP: c.registryPlainHTTP,
		Runtime:           host.Options{GCBallast: c.gcBallast()},
		Getenv:            getenv,
		ShutdownTimeout:   c.shutdownTimeout,
		Logger:            log,
		NoTrim:            c.noTrim,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ferry-host device: serving apps on http://%s\n", h.Addr())
	log.Info("ferry-host device started", "apps", h.Addr().String(), "server", c.server, "trust_keys", len(policy.Keys),
		"arch", device.Arch(), "version", hostVersion())
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", c.shutdownTimeout)
	case runErr = <-h.Done():
	}
	err = h.Close(context.WithoutCancel(ctx))
	if runErr != nil {
		return errors.Join(runErr, err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("ferry-host device stopped cleanly")
	return nil
}
