package single

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// Defaults of Options.
const (
	// DefaultReloadInterval is Options.ReloadInterval's default.
	DefaultReloadInterval = 10 * time.Second
	// DefaultRetryMin is Options.RetryMin's default.
	DefaultRetryMin = time.Second
	// DefaultRetryMax is Options.RetryMax's default.
	DefaultRetryMax = 30 * time.Second
	// MaxValueBytes caps one variable file; a larger one is an error.
	MaxValueBytes = 1 << 20
)

// ErrInvalidRef means Options.Ref is not REPO@sha256:HEX. Not retryable.
var ErrInvalidRef = errors.New("invalid --ref")

// Options configure an App. The zero value of each field but Ref and
// Core.StoreDir is its default.
type Options struct {
	// Ref is the artifact, "REPO@sha256:<hex>". Required; a tag is refused.
	Ref string
	// Core configures the host core (core.Open); StoreDir is required.
	Core core.Config
	// ConfigDir holds one file per non-secret variable. Empty means none.
	ConfigDir string
	// SecretsDir holds one file per secret variable. Empty means none.
	SecretsDir string
	// ReloadInterval is how often ConfigDir and SecretsDir are re-read
	// (DefaultReloadInterval when zero).
	ReloadInterval time.Duration
	// RetryMin and RetryMax bound the backoff between failed deploys
	// (DefaultRetryMin, DefaultRetryMax when zero).
	RetryMin, RetryMax time.Duration
	// Logger receives one line per deploy attempt that changes something.
	// Nil discards. Values of variables are never logged.
	Logger *slog.Logger
}

// App is one app served by a single-app host. Create it with New, start
// it with Run; it is safe for concurrent use.
type App struct {
	opts Options
	ref  string
	log  *slog.Logger
	core *core.Core
	reg  *registry.Client
	st   *state.Store

	attempts *prometheus.CounterVec

	mu       sync.Mutex
	app      *deploy.App       // the artifact's app, once known
	deployed bool              // a Put succeeded
	applied  map[string]string // the values of the last successful Put
	reason   string            // why not deployed (or why the last Put failed)
	warned   map[string]bool   // config-dir names warned about
}

var _ http.Handler = (*App)(nil)

// New checks opts and opens the host core. It does not contact the
// registry (Run does). Close releases it.
func New(opts Options) (*App, error) {
	ref, err := registry.ParseReference(opts.Ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRef, err)
	}
	if ref.Digest == "" || ref.Tag != "" {
		return nil, fmt.Errorf("%w: %q must be REPO@sha256:HEX (single-app mode deploys by digest only)", ErrInvalidRef, opts.Ref)
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryMin)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Core.Logger == nil {
		opts.Core.Logger = log
	}
	// A second registry client, made as core.Open makes its own, reads the
	// app's name from the artifact before the core's Put.
	regOpts := opts.Core.Registry
	getenv := opts.Core.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	creds, err := registry.EnvCredentials(getenv)
	if err != nil {
		return nil, err
	}
	if len(creds) > 0 {
		merged := maps.Clone(regOpts.Credentials)
		if merged == nil {
			merged = map[string]registry.Credential{}
		}
		maps.Copy(merged, creds)
		regOpts.Credentials = merged
	}
	rc, err := registry.New(regOpts)
	if err != nil {
		return nil, err
	}
	c, err := core.Open(opts.Core)
	if err != nil {
		return nil, err
	}
	st, err := state.Open(opts.Core.StoreDir)
	if err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	a := &App{opts: opts, ref: ref.String(), log: log, core: c, reg: rc, st: st,
		reason: "starting: " + ref.String() + " is not deployed yet", warned: map[string]bool{},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_host_app_put_attempts_total",
			Help: "Deploys of the single app tried, by result: ok, or the failure's class (signature, registry, artifact, rejected, config, deploy)."},
			[]string{"result"}),
	}
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_host_app_ready",
		Help: "1 while the single app is deployed, verified and healthy (what /readyz answers 200 for), else 0."},
		func() float64 {
			if ok, _ := a.Ready(); ok {
				return 1
			}
			return 0
		})
	if err := errors.Join(c.Metrics().Register(ready), c.Metrics().Register(a.attempts)); err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("single: registering metrics: %w", err)
	}
	return a, nil
}

// Core returns the host core the app is deployed into.
func (a *App) Core() *core.Core { return a.core }

// Close closes the runtime, stopping guests still running when ctx ends.
func (a *App) Close(ctx context.Context) error { return a.core.Close(ctx) }

// Run deploys the app, retrying with backoff until it is deployed, then
// re-reads the variable directories every ReloadInterval and re-puts the
// app when a value changed. It also runs the core's health prober. It
// blocks until ctx ends and then returns nil.
func (a *App) Run(ctx context.Context) error {
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); _ = a.core.RunHealth(ctx) }()
	defer func() { <-healthDone }()

	wait := a.opts.RetryMin
	for {
		err := a.step(ctx)
		a.mu.Lock()
		deployed := a.deployed
		a.mu.Unlock()
		next := a.opts.ReloadInterval
		switch {
		case err == nil:
			wait = a.opts.RetryMin
		case !deployed:
			next, wait = wait, min(2*wait, a.opts.RetryMax)
		}
		if ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// step does one round: learn the app, read the values, and put the app
// when it is not deployed yet or its values changed.
func (a *App) step(ctx context.Context) error {
	app, err := a.appConfig(ctx)
	if err != nil {
		return a.failed(ctx, err)
	}
	vals, err := a.values(app)
	if err != nil {
		return a.failed(ctx, fmt.Errorf("%w: %w", errConfig, err))
	}
	a.mu.Lock()
	same := a.deployed && maps.Equal(vals, a.applied)
	redeploy := a.deployed
	a.mu.Unlock()
	if same {
		return nil
	}
	if _, err := a.core.Put(ctx, app.Name, api.PutRequest{Ref: a.ref, Secrets: vals}); err != nil {
		return a.failed(ctx, err)
	}
	a.attempts.WithLabelValues("ok").Inc()
	a.mu.Lock()
	a.deployed, a.applied, a.reason = true, vals, ""
	a.mu.Unlock()
	if redeploy {
		a.log.LogAttrs(ctx, slog.LevelInfo, "variables changed: app reconfigured", slog.String("app", app.Name), slog.Any("variables", slices.Sorted(maps.Keys(vals))))
	} else {
		a.log.LogAttrs(ctx, slog.LevelInfo, "app deployed", slog.String("app", app.Name), slog.String("ref", a.ref))
	}
	return nil
}

var errConfig = errors.New("reading variables")

// failed records why a step failed and returns err.
func (a *App) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	class, reason := Reason(err)
	a.attempts.WithLabelValues(class).Inc()
	a.mu.Lock()
	changed := a.reason != reason
	a.reason = reason
	deployed := a.deployed
	a.mu.Unlock()
	if changed {
		if deployed {
			a.log.LogAttrs(ctx, slog.LevelWarn, "reconfiguring failed; the running app keeps its values", slog.String("error", reason))
		} else {
			a.log.LogAttrs(ctx, slog.LevelWarn, "app not deployed; retrying with backoff", slog.String("ref", a.ref), slog.String("error", reason))
		}
	}
	return err
}

// Reason classifies an error of a deploy attempt: its metric label and a
// one-line reason for /readyz, starting with "signature: " for a
// verification failure, "registry: " when the registry is unreachable,
// "artifact: " when it lacks the artifact, "rejected: " when the host
// refuses the app, "config: " when the variable directories cannot be read.
func Reason(err error) (class, reason string) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if errors.Is(err, errConfig) {
		return "config", "config: " + msg
	}
	code, _ := core.Classify(err)
	switch code {
	case api.CodeVerification:
		class = "signature"
	case api.CodeUnavailable:
		class = "registry"
	case api.CodeArtifactNotFound:
		class = "artifact"
	case api.CodeRejected, api.CodeBadRequest:
		class = "rejected"
	default:
		class = "deploy"
	}
	return class, class + ": " + msg
}

// appConfig returns the artifact's app: known already, from the
// registry (manifest and config, checked against the digest), or from a
// version with that digest in the state directory.
func (a *App) appConfig(ctx context.Context) (deploy.App, error) {
	a.mu.Lock()
	app := a.app
	a.mu.Unlock()
	if app != nil {
		return *app, nil
	}
	in, err := a.reg.Inspect(ctx, a.ref)
	if err == nil && in.App == nil {
		return deploy.App{}, fmt.Errorf("%w: %s is a %s, not a ferry app", registry.ErrInvalidArtifact, a.ref, in.Kind)
	}
	if err != nil {
		local, ok := a.fromState()
		if !ok {
			return deploy.App{}, err
		}
		in = &registry.Inspection{App: &local}
		a.log.LogAttrs(ctx, slog.LevelInfo, "registry unreachable; the state directory holds the artifact", slog.String("ref", a.ref), slog.String("error", err.Error()))
	}
	a.mu.Lock()
	a.app = in.App
	a.mu.Unlock()
	return *in.App, nil
}

func (a *App) fromState() (deploy.App, bool) {
	r, _ := registry.ParseReference(a.ref)
	names, err := a.st.Names()
	if err != nil {
		return deploy.App{}, false
	}
	for _, n := range names {
		rec, err := a.st.Load(n)
		if err != nil {
			continue
		}
		for _, v := range []*state.Version{&rec.Current, rec.Previous} {
			if v != nil && v.Digest == string(r.Digest) && v.App.Name == n {
				return v.App, true
			}
		}
	}
	return deploy.App{}, false
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// values reads ConfigDir and SecretsDir into the values of app's declared
// variables: secrets win over config, and config never sets a secret one.
func (a *App) values(app deploy.App) (map[string]string, error) {
	out := map[string]string{}
	cfg, err := ReadDir(a.opts.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("--config-dir: %w", err)
	}
	sec, err := ReadDir(a.opts.SecretsDir)
	if err != nil {
		return nil, fmt.Errorf("--secrets-dir: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg)) {
		decl, ok := app.Variables[name]
		switch {
		case !ok:
			a.warnOnce("config:"+name, "a file in --config-dir names no variable of the app; ignored", name)
		case decl.Secret:
			a.warnOnce("secret:"+name, "a file in --config-dir names a secret variable; ignored (secret values come from --secrets-dir only)", name)
		default:
			out[name] = cfg[name]
		}
	}
	for _, name := range slices.Sorted(maps.Keys(sec)) {
		if _, ok := app.Variables[name]; !ok {
			a.warnOnce("secrets:"+name, "a file in --secrets-dir names no variable of the app; ignored", name)
			continue
		}
		out[name] = sec[name]
	}
	return out, nil
}

func (a *App) warnOnce(key, msg, name string) {
	a.mu.Lock()
	seen := a.warned[key]
	a.warned[key] = true
	a.mu.Unlock()
	if !seen {
		a.log.Warn(msg, "variable", name)
	}
}

// ReadDir reads dir as a mounted ConfigMap or Secret: one regular file (or
// link to one) per variable whose name is a variable name, content as is.
// Names starting with "." and other names are skipped, and so is a link
// to nothing (the volume is being updated); an empty dir means
// no values. A file over MaxValueBytes is an error.
func ReadDir(dir string) (map[string]string, error) {
	out := map[string]string{}
	if dir == "" {
		return out, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !varNameRE.MatchString(name) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p) // follows the ..data links of a mounted volume
		if errors.Is(err, fs.ErrNotExist) {
			continue // a link left dangling while the volume is updated
		}
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > MaxValueBytes {
			return nil, fmt.Errorf("%s: %d bytes, more than the %d a value may have", p, fi.Size(), MaxValueBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out[name] = string(b)
	}
	return out, nil
}

// Ready reports whether the app is deployed, verified and healthy, and a
// one-line reason: why not, or which digest serves.
func (a *App) Ready() (bool, string) {
	a.mu.Lock()
	deployed, reason, app := a.deployed, a.reason, a.app
	a.mu.Unlock()
	if !deployed {
		return false, reason
	}
	ai, err := a.core.Get(app.Name)
	if err != nil {
		return false, "app: " + err.Error()
	}
	if ai.Status != api.StatusServing {
		return false, "app: " + ai.Status + ": " + ai.Message
	}
	if !ai.Healthy {
		why := "its health probe fails"
		for _, p := range ai.Probes {
			if p.LastError != "" {
				why = "component " + p.Component + ": " + p.LastError
				break
			}
		}
		return false, "unhealthy: " + why
	}
	return true, "ready: " + app.Name + " serves " + ai.Digest
}

// HealthHandler serves /livez, /readyz and /metrics.
func (a *App) HealthHandler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := a.Ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
	m.Handle("GET /metrics", promhttp.HandlerFor(a.core.Metrics(), promhttp.HandlerOpts{}))
	return m
}

// ServeHTTP serves the app (503 with the reason until it is deployed), on
// every Host header.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	deployed, reason, app := a.deployed, a.reason, a.app
	a.mu.Unlock()
	if !deployed {
		http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
		return
	}
	if len(app.Hosts) > 0 && !slices.Contains(app.Hosts, hostKey(r.Host)) {
		r = r.WithContext(r.Context()) // a shallow copy
		r.Host = app.Hosts[0]
	}
	a.core.Runtime().ServeHTTP(w, r)
}

func hostKey(h string) string {
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	return strings.ToLower(h)
}

// PolicyFromPaths is signer.PolicyFromFiles where a path may also be a
// directory (a mounted Secret): every *.pub file in it is a trust key.
// A directory holding no *.pub file is an error.
func PolicyFromPaths(paths []string) (signer.Policy, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return signer.Policy{}, fmt.Errorf("%w: %v", signer.ErrInvalidKey, err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.pub"))
		if err != nil {
			return signer.Policy{}, err
		}
		var keys []string
		for _, f := range m {
			if !strings.HasPrefix(filepath.Base(f), ".") {
				keys = append(keys, f)
			}
		}
		if len(keys) == 0 {
			return signer.Policy{}, fmt.Errorf("%w: directory %s holds no *.pub file", signer.ErrInvalidKey, p)
		}
		sort.Strings(keys)
		files = append(files, keys...)
	}
	return signer.PolicyFromFiles(files)
}
