package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/targets/host"
)

// config is the parsed command line.
type config struct {
	listen, control    string
	stateDir           string
	tokenFile          string
	tokenEnv           string
	trustKeys          []string
	insecureSkipVerify bool
	registryPlainHTTP  bool
	compileCache       string
	tlsCert, tlsKey    string
	clientCA           string
	logLevel           slog.Level
	logFormat          string
	shutdownTimeout    time.Duration
	deployGC           bool
	gcBallastMiB       int64
	compileWorkers     int
	memoryBudget       byteSize
	cpuSlots           int
}

// byteSize is a flag value in bytes, written as a number with an optional
// KiB, MiB or GiB suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("want a size such as 2GiB, 512MiB or a number of bytes")
	}
	*b = byteSize(n * mult)
	return nil
}

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("ferry-host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ferry-host [flags]\n       ferry-host app --ref REPO@sha256:HEX ... (single-app mode; see ferry-host app --help)\n\nServes WebAssembly apps and ferry's control API. Flags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address of the app HTTP listener")
	fs.StringVar(&c.control, "control", "127.0.0.1:8081", "address of the control API listener (plain HTTP only on loopback; else give --tls-cert/--tls-key)")
	fs.StringVar(&c.stateDir, "state-dir", defaultStateDir(getenv), "state directory: deployed apps, modules, key-value stores, compile cache")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the control API bearer token")
	fs.StringVar(&c.tokenEnv, "token-env", "FERRY_HOST_TOKEN", "environment variable holding the bearer token (used when --token-file is not given)")
	fs.Var((*stringList)(&c.trustKeys), "trust-key", "PEM public key file trusted to sign apps (repeatable; required unless --insecure-skip-verify)")
	fs.BoolVar(&c.insecureSkipVerify, "insecure-skip-verify", false, "run apps WITHOUT checking their signatures (development only)")
	fs.BoolVar(&c.registryPlainHTTP, "registry-plain-http", false, "talk plain HTTP to every registry (loopback registries always use plain HTTP)")
	fs.StringVar(&c.compileCache, "compile-cache", "", "wazero compilation cache directory (default STATE-DIR/compile-cache)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate for the control API (serve HTTPS)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&c.clientCA, "client-ca", "", "PEM CA bundle; when set, control clients must present a certificate it signed (mTLS)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGTERM; then their guests are stopped (503) and the host exits within about 3 s more, whatever the guests do")
	fs.Int64Var(&c.gcBallastMiB, "gc-ballast-mib", host.DefaultGCBallast>>20, "MiB of heap ballast: never-touched memory the Go collector counts as live, so that a small heap is not collected every few hundred requests (costs no RSS, counts against GOMEMLIMIT; 0: none)")
	fs.IntVar(&c.compileWorkers, "compile-workers", 0, "goroutines compiling one large module (a Go guest) in parallel; 0: one per CPU, 1: leave the other cores to serving while deploying")
	fs.IntVar(&c.cpuSlots, "cpu-slots", 0, "how many guests run guest code at once; the others wait and the CPU goes to the app that has had least of it, so a spinning app cannot slow its neighbours (a short request of an app that runs nothing starts at once on a burst); 0: GOMAXPROCS-1, at least 1; -1: no CPU scheduler")
	fs.Var(&c.memoryBudget, "memory-budget", "cap on the linear memory of all guest instances together (e.g. 2GiB): each instance reserves its memory limit first; a request finding no room within 1 s gets 503 (0: no cap)")
	fs.BoolVar(&c.deployGC, "deploy-gc", true, "a deploy that brought the Go heap close to its next garbage collection runs it before returning, not beside the requests that follow (false: leave it to the background collector)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *level)
	}
	switch c.logFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, c.logFormat)
	}
	if c.compileWorkers < 0 {
		return nil, fmt.Errorf("%w: --compile-workers %d: want 0 or more", errUsage, c.compileWorkers)
	}
	if c.gcBallastMiB < 0 {
		return nil, fmt.Errorf("%w: --gc-ballast-mib %d: want 0 or more", errUsage, c.gcBallastMiB)
	}
	if c.stateDir == "" {
		return nil, fmt.Errorf("%w: --state-dir is required (no home directory to default to)", errUsage)
	}
	if len(c.trustKeys) == 0 && !c.insecureSkipVerify {
		return nil, fmt.Errorf("%w: give at least one --trust-key (or --insecure-skip-verify for development)", errUsage)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	if c.clientCA != "" && c.tlsCert == "" {
		return nil, fmt.Errorf("%w: --client-ca needs --tls-cert and --tls-key", errUsage)
	}
	return c, nil
}

// defaultStateDir is $XDG_STATE_HOME/ferry-host or ~/.local/state/ferry-host.
func defaultStateDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ferry-host")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "ferry-host")
	}
	return ""
}

// readToken returns the bearer token from --token-file or --token-env.
// The token itself never appears in an error.
func (c *config) readToken(getenv func(string) string) (string, error) {
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("reading --token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--token-file %s is empty", c.tokenFile)
		}
		return t, nil
	}
	if t := strings.TrimSpace(getenv(c.tokenEnv)); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("%w: no control token: give --token-file, or set $%s", errUsage, c.tokenEnv)
}

// gcBallast is host.Options.GCBallast for --gc-ballast-mib (0: none).
func (c *config) gcBallast() int64 {
	if c.gcBallastMiB == 0 {
		return -1
	}
	return c.gcBallastMiB << 20
}
