package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ferry-wasm/ferry/deploy"
)

var errEOF = io.EOF

// component is one component of a loaded version, ready to serve.
type component struct {
	rt      *Runtime
	app     string
	name    string
	digest  string
	exec    deploy.Executor
	routes  []string
	health  string
	eng     *engine
	mod     *moduleEntry
	cfg     wazero.ModuleConfig // base config: stderr, fs, name ""
	env     []string            // static KEY=VALUE pairs from Env, sorted
	vars    map[string]string   // resolved variables; never logged
	stores  map[string]kvStore
	allowed allowSet

	timeout time.Duration
	maxResp int64
	sem     chan struct{}

	log   *slog.Logger
	pool  *pool // reactor only
	m     *compMetrics
	alive atomic.Int64 // live instances
	mem   atomic.Int64 // bytes of pooled reactor instance memory

	running   runSet        // calls in progress (stop.go)
	logRate   *logBucket    // the app's guest log bucket (guestlog.go)
	execSlots chan struct{} // the app's execution slots (fairness.go)
}

// newComponent validates and compiles one component of v.
func (r *Runtime) newComponent(ctx context.Context, v *version, dc deploy.Component, b Bundle) (*component, error) {
	exec := dc.Executor
	if exec == "" {
		exec = deploy.ExecutorWAGI
	}
	if !exec.Valid() {
		return nil, fmt.Errorf("%w: unknown executor %q", ErrInvalidApp, exec)
	}
	lim := r.limits(dc.Limits)
	c := &component{
		rt: r, app: v.app.Name, name: dc.Name, digest: dc.Digest, exec: exec,
		routes: slices.Clone(dc.Routes), timeout: lim.Timeout.Std(), maxResp: lim.MaxResponseBytes,
		sem:     make(chan struct{}, lim.MaxConcurrency),
		log:     r.log.With(slog.String("app", v.app.Name), slog.String("component", dc.Name)),
		logRate: r.logBucketFor(v.app.Name), execSlots: r.appSlots(v.app.Name),
	}
	if dc.Health != nil && dc.Health.Path != "" {
		c.health = dc.Health.Path
	}
	for _, p := range c.routes {
		if _, _, err := splitPattern(p); err != nil {
			return nil, err
		}
	}
	for k, val := range dc.Env {
		c.env = append(c.env, k+"="+val)
	}
	sort.Strings(c.env)
	var err error
	if c.vars, err = resolveVariables(v.app, dc, b.Secrets); err != nil {
		return nil, err
	}
	if c.allowed, err = parseAllowed(dc.AllowedOutboundHosts); err != nil {
		return nil, err
	}
	c.stores = map[string]kvStore{}
	for _, s := range dc.KeyValueStores {
		if !slices.Contains(v.app.KeyValueStores, s) {
			return nil, fmt.Errorf("%w: key-value store %q is not declared by the app", ErrInvalidApp, s)
		}
		st, err := r.kv.store(v.app.Name, s)
		if err != nil {
			return nil, err
		}
		c.stores[s] = st
	}

	// Module: verify, compile once per digest, check the ABI.
	wasm, ok := b.Modules[dc.Digest]
	if !ok {
		return nil, fmt.Errorf("%w: digest %q", ErrMissingModule, dc.Digest)
	}
	if err := verifyDigest(dc.Digest, wasm); err != nil {
		return nil, err
	}
	pages := uint32((lim.MemoryBytes + 65535) / 65536)
	pages = min(max(pages, 1), 65536)
	// Instrumented modules on the compiler; wazero's own termination checks
	// for the rest (see interrupt.go).
	for _, safe := range []bool{!compilerSupported(), true} {
		if c.eng, err = r.engineFor(ctx, pages, safe); err != nil {
			return nil, err
		}
		c.mod, err = r.compile(ctx, c.eng, dc.Digest, wasm)
		if !errors.Is(err, errNotInstrumentable) {
			break
		}
		r.log.LogAttrs(ctx, slog.LevelDebug, "module runs with wazero's termination checks",
			slog.String("app", c.app), slog.String("component", c.name), slog.String("reason", err.Error()))
	}
	if err != nil {
		return nil, err
	}
	if err := requiredExports(c.mod.cm, exec); err != nil {
		c.close()
		return nil, err
	}

	cfg := wazero.NewModuleConfig().WithName("").WithRandSource(rand.Reader).
		WithStderr(io.Discard). // bound per call (WAGI) or instance (reactor): guestlog.go
		WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	if len(dc.Files) > 0 {
		fsys := b.Files[dc.Name]
		if fsys == nil {
			c.close()
			return nil, fmt.Errorf("%w: component declares files but no file tree was given", ErrInvalidApp)
		}
		ff, err := newFilteredFS(fsys, dc.Files)
		if err != nil {
			c.close()
			return nil, err
		}
		cfg = cfg.WithFSConfig(wazero.NewFSConfig().WithFSMount(ff, "/"))
	}
	// Instrumented modules are started by the host after arming their
	// interrupt (startInstance); wazero starts the others.
	start := "_start"
	if exec == deploy.ExecutorReactor {
		start = "_initialize"
	}
	if c.eng.safe {
		cfg = cfg.WithStartFunctions(start)
	} else {
		cfg = cfg.WithStartFunctions()
	}
	c.cfg = cfg
	c.m = r.metrics.component(c.app, c.name)
	if exec == deploy.ExecutorWAGI {
		// Instantiate once now without running _start: a module that
		// cannot be instantiated (a data segment outside its memory, say)
		// is refused at deploy rather than failing every request, and the
		// first request finds wazero's instantiation path warm.
		if err := c.instantiateCheck(ctx); err != nil {
			c.close()
			return nil, fmt.Errorf("%w: %w", ErrInstantiate, err)
		}
	}
	if exec == deploy.ExecutorReactor {
		c.pool = &pool{c: c, max: lim.MaxConcurrency, maxUses: r.opts.ReactorMaxRequests}
		// Initialise one instance now: a failing _initialize refuses the
		// deploy, and the first request finds a warm instance.
		inst, err := c.pool.newInstance(ctx)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("%w: %w", ErrInstantiate, err)
		}
		c.pool.put(inst)
	}
	return c, nil
}

// instantiateCheck instantiates the module without running its start
// function and closes it again.
func (c *component) instantiateCheck(ctx context.Context) error {
	ctx = experimental.WithMemoryAllocator(ctx, memAllocator{})
	mod, err := c.eng.rt.InstantiateModule(ctx, c.mod.cm, c.cfg.WithStartFunctions())
	if err != nil {
		return err
	}
	return mod.Close(ctx)
}

// limits fills zero fields of l from the runtime defaults.
func (r *Runtime) limits(l deploy.Limits) deploy.Limits {
	d := r.opts.Defaults
	pick := func(a, b, c int64) int64 {
		if a > 0 {
			return a
		}
		if b > 0 {
			return b
		}
		return c
	}
	l.MemoryBytes = pick(l.MemoryBytes, d.MemoryBytes, DefaultMemoryBytes)
	l.MaxResponseBytes = pick(l.MaxResponseBytes, d.MaxResponseBytes, DefaultMaxResponseBytes)
	l.Timeout = deploy.Duration(pick(int64(l.Timeout), int64(d.Timeout), int64(DefaultTimeout)))
	l.MaxConcurrency = int(pick(int64(l.MaxConcurrency), int64(d.MaxConcurrency), DefaultMaxConcurrency))
	return l
}

// close releases the component's instances and module reference.
func (c *component) close() {
	if c.pool != nil {
		c.pool.closeAll()
	}
	if c.mod != nil {
		c.rt.release(c.mod)
		c.mod = nil
	}
}

// serve runs one request. It never panics on guest behaviour: every failure
// becomes a status code and a log line naming app and component.
//
// cs comes from callPool with cs.mt holding the request's match; serve
// returns it to the pool.
func (c *component) serve(w http.ResponseWriter, r *http.Request, cs *callState) {
	start := time.Now()
	// The callState is the request's context: the deadline, the client's
	// cancellation, the guest's interrupt (see call.go).
	cs.comp = c
	defer putCall(cs)
	m := &cs.mt
	cs.begin(r.Context(), c.timeout)
	defer cs.finish()
	ctx := context.Context(cs)

	select {
	case c.sem <- struct{}{}:
	default:
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			c.fail(w, r, start, http.StatusServiceUnavailable, "component at its concurrency limit", nil)
			return
		}
	}
	defer func() { <-c.sem }()

	cs.out.max, cs.out.cancel = c.maxResp, cs.cancelFn
	if code, err := cs.readBody(w, r, c.rt.opts.MaxRequestBytes, c.timeout); err != nil {
		c.fail(w, r, start, code, "reading request body", err)
		return
	}

	var err error
	if c.exec == deploy.ExecutorReactor {
		err = c.runReactor(ctx, cs, r, m)
	} else {
		err = c.runWAGI(ctx, cs, r, m)
	}
	if err == nil && cs.out.overflow {
		err = errTooLarge
	}
	if err != nil {
		switch {
		case errors.Is(err, errMemoryBudget):
			c.rt.log.LogAttrs(r.Context(), slog.LevelWarn, "request refused: host memory budget full",
				slog.String("app", c.app), slog.String("component", c.name), slog.Int("status", 503))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(budgetBody))
			c.m.observe(http.StatusServiceUnavailable, time.Since(start))
		case cs.out.overflow:
			c.fail(w, r, start, http.StatusInternalServerError, "response larger than "+strconv.FormatInt(c.maxResp, 10)+" bytes", err)
		case errors.Is(err, errAppBusy):
			c.fail(w, r, start, http.StatusServiceUnavailable, "app at its limit of concurrent guest executions", err)
		case errors.Is(ctx.Err(), errGuestStopped):
			c.fail(w, r, start, http.StatusServiceUnavailable, "guest stopped: its app was deleted or the host is shutting down", err)
		case errors.Is(ctx.Err(), context.DeadlineExceeded) || isExit(err, sys.ExitCodeDeadlineExceeded):
			c.fail(w, r, start, http.StatusGatewayTimeout, "guest exceeded its deadline of "+c.timeout.String(), err)
		case r.Context().Err() != nil:
			c.fail(w, r, start, 499, "client went away", err)
		default:
			c.fail(w, r, start, http.StatusInternalServerError, "guest failed", err)
		}
		return
	}
	var status int
	var body []byte
	if c.exec == deploy.ExecutorReactor {
		status, body = c.writeReactorHead(w, cs)
	} else {
		status, body, err = writeCGIHead(w, cs.out.b)
		if err != nil {
			c.fail(w, r, start, http.StatusInternalServerError, "malformed CGI response", err)
			return
		}
	}
	if len(body) > 64<<10 {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	c.m.observe(status, time.Since(start))
}

// fail answers a failed request and logs why.
func (c *component) fail(w http.ResponseWriter, r *http.Request, start time.Time, code int, why string, err error) {
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", code)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.log.LogAttrs(r.Context(), slog.LevelWarn, "request failed: "+why, attrs...)
	if code != 499 {
		http.Error(w, http.StatusText(code), code)
	}
	c.m.observe(code, time.Since(start))
}

func isExit(err error, code uint32) bool {
	if err == nil {
		return false
	}
	var ee *sys.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// readBody reads the whole request body (bounded) before the guest runs, so
// a slow client never holds a guest instance.
func (cs *callState) readBody(w http.ResponseWriter, r *http.Request, max int64, timeout time.Duration) (int, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		cs.body.Reset(nil)
		return 0, nil
	}
	if r.ContentLength > max {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("content length %d over %d", r.ContentLength, max)
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	buf := cs.bodyB[:0]
	lr := io.LimitReader(r.Body, max+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			cs.bodyB = buf
			return http.StatusRequestTimeout, err
		}
	}
	cs.bodyB = buf
	if int64(len(buf)) > max {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", max)
	}
	cs.body.Reset(buf)
	return 0, nil
}

// compMetrics are a component's pre-resolved metric children, so a request
// does no label lookups. The request counters of a status class are made on
// the first request of that class: six counters per component were 4 KB,
// most of the metrics' memory with 10,000 apps, and most apps never answer
// most classes (an app never requested has no requests series yet).
type compMetrics struct {
	requests  *prometheus.CounterVec
	app, comp string
	codes     [6]atomic.Pointer[counterRef] // by status class 0..5 (0 = other)
	latency   prometheus.Observer
	instances prometheus.Gauge
}

// counterRef holds a counter for an atomic.Pointer.
type counterRef struct{ prometheus.Counter }

func (m *compMetrics) observe(status int, d time.Duration) {
	k := status / 100
	if k < 1 || k > 5 {
		k = 0
	}
	c := m.codes[k].Load()
	if c == nil {
		// WithLabelValues returns the same child to concurrent callers.
		c = &counterRef{m.requests.WithLabelValues(m.app, m.comp, statusClasses[k])}
		m.codes[k].Store(c)
	}
	c.Inc()
	m.latency.Observe(d.Seconds())
}
