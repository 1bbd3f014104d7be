package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"

	"github.com/ferry-wasm/ferry/deploy"
)

// Built-in defaults for Options.Defaults fields left zero.
const (
	// DefaultMemoryBytes caps a guest's linear memory: 128 MiB.
	DefaultMemoryBytes = 128 << 20
	// DefaultTimeout is the request deadline: 30 s.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxConcurrency caps concurrent requests per component: 100.
	DefaultMaxConcurrency = 100
	// DefaultMaxResponseBytes caps a response body: 16 MiB.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultMaxRequestBytes caps a request body: 16 MiB.
	DefaultMaxRequestBytes = 16 << 20
	// DefaultReactorMaxRequests is how many requests a reactor instance
	// serves before it is recycled: 10,000.
	DefaultReactorMaxRequests = 10000
	// DefaultHealthTimeout bounds a deploy's health probes: 10 s.
	DefaultHealthTimeout = 10 * time.Second
)

// Options configure a Runtime. The zero value is a working in-memory runtime.
type Options struct {
	// StateDir holds the key-value store files (StateDir/kv/<app>.db) and,
	// unless CompilationCacheDir is set, the compilation cache
	// (StateDir/compile-cache). Empty means nothing is persisted: key-value
	// stores live in memory and compilation is cached in memory only.
	StateDir string
	// CompilationCacheDir is wazero's on-disk compilation cache, shared
	// across restarts. Empty means StateDir/compile-cache, or memory only
	// when StateDir is empty too.
	CompilationCacheDir string
	// Logger receives the runtime's and the guests' logs, labelled with app
	// and component. Nil discards them. Secret values are never logged.
	Logger *slog.Logger
	// Metrics registers the runtime's Prometheus collectors. Nil means the
	// collectors exist but are not registered anywhere.
	Metrics prometheus.Registerer
	// Defaults fill in each component's zero Limits: MemoryBytes
	// (DefaultMemoryBytes), Timeout (DefaultTimeout), MaxConcurrency
	// (DefaultMaxConcurrency), MaxResponseBytes (DefaultMaxResponseBytes).
	Defaults deploy.Limits
	// MaxRequestBytes caps a request body; larger requests get 413. Zero
	// means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// ReactorMaxRequests recycles a reactor instance after that many
	// requests. Zero means DefaultReactorMaxRequests.
	ReactorMaxRequests int
	// HealthTimeout bounds each health probe at deploy. Zero means
	// DefaultHealthTimeout.
	HealthTimeout time.Duration
	// CompileWorkers is how many goroutines compile one large module (its
	// functions are compiled in parallel). Zero means GOMAXPROCS; modules
	// under parallelCompileMin bytes always compile on one goroutine.
	CompileWorkers int
	// NoDeployGC turns off the garbage collection a Deploy runs before it
	// returns when the Go heap is close to its next collection (see gc.go):
	// with it off, the collection of a deploy's garbage runs in the
	// background, beside the requests that follow the deploy.
	NoDeployGC bool
	// GCBallast is the size of a heap ballast (see gc.go): address space
	// the Go collector counts as live heap but that is never touched, so
	// that a host with a small heap is not collected every few hundred
	// requests. It is process-wide (the largest asked for by any Runtime)
	// and kept until the process exits. Zero means DefaultGCBallast;
	// negative means none.
	GCBallast int64
	// OutboundClient makes the guests' outbound HTTP requests (only to their
	// allowed hosts). Nil means a client with a 30 s timeout.
	OutboundClient *http.Client
	// GuestLogBytes caps what one request's guest may log (stderr, a
	// reactor's stdout, the ferry log function), each record counted as its
	// text plus about 100 bytes; the rest is dropped and one line says how
	// much. Zero means DefaultGuestLogBytes (64 KiB); negative means no cap.
	GuestLogBytes int64
	// GuestLogRate limits each app's guest logging, in bytes per second
	// (counted as for GuestLogBytes), with bursts of four seconds' worth;
	// beyond it records are dropped. Zero means DefaultGuestLogRate
	// (64 KiB/s); negative means no limit.
	GuestLogRate int64
	// StopGrace is how long a deleted app's in-flight requests may run
	// before their guests are stopped (the requests then answer 503). Zero
	// means DefaultStopGrace (5 s).
	StopGrace time.Duration
	// MemoryBudget caps the linear memory of all guest instances together,
	// in bytes: each instance reserves its component's memory limit before
	// it is instantiated (a WAGI instance for its request, a reactor
	// instance while it is pooled), so the sum never passes the budget. A
	// request finding it full waits up to MemoryWait, then answers 503.
	// Zero means no budget.
	MemoryBudget int64
	// MemoryWait is how long a request waits for room in MemoryBudget
	// (never past its deadline). Zero means DefaultMemoryWait (1 s).
	MemoryWait time.Duration
	// MaxAppExecutions caps how many guests of one app (all its
	// components and versions) run at once; further requests wait for a
	// slot until their deadline, then answer 503, so that an app whose
	// guests spin cannot take every core from the others (fairness.go).
	// Zero means no cap.
	MaxAppExecutions int
	// CPUSlots is how many guest executions run guest code at once,
	// host-wide; the others wait, and the CPU goes to the app that has had
	// least of it (weighted fair queueing, sched.go): a running guest hands
	// its slot to a fairer waiter within microseconds. A request that gets
	// no slot before its deadline answers 503. Beyond the slots, an app
	// that runs nothing may start one execution at once on a burst grant
	// (at most CPUSlots of them host-wide), which queues like the others at
	// its first checkpoint, after at most 4,096 checks: a short request of
	// an idle app never waits behind spinners. Zero means GOMAXPROCS-1
	// (at least 1: one P stays free for the connections and other Go
	// work); negative turns the scheduler off.
	CPUSlots int
}

// Bundle is what Deploy needs besides the app's configuration.
type Bundle struct {
	// Modules maps a component digest ("sha256:<hex>") to its Wasm bytes.
	// The bytes are verified against the digest.
	Modules map[string][]byte
	// Secrets gives values of app variables by name (secret ones, and
	// overrides of defaults). They are never logged or returned.
	Secrets map[string]string
	// Files maps a component name to the file tree its declared Files are
	// read from; only the declared paths are visible to the guest, read-only,
	// under "/". A component that declares Files needs an entry here.
	Files map[string]fs.FS
}

// Status is the state of an app version.
type Status string

// Status values.
const (
	// StatusServing means the version takes traffic.
	StatusServing Status = "serving"
	// StatusStandby means the version is loaded for rollback only.
	StatusStandby Status = "standby"
)

// Health is the outcome of a version's health probe.
type Health string

// Health values.
const (
	// HealthHealthy means every component with a health path answered 2xx
	// when the version was deployed.
	HealthHealthy Health = "healthy"
	// HealthUnchecked means no component declares a health path.
	HealthUnchecked Health = "unchecked"
)

// AppStatus describes a deployed app, as returned by List and App.
type AppStatus struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Current is the version taking traffic.
	Current VersionStatus `json:"current"`
	// Previous is the version kept for Rollback; nil when there is none.
	Previous *VersionStatus `json:"previous,omitempty"`
}

// VersionStatus describes one loaded version of an app.
type VersionStatus struct {
	// Generation increases with every Deploy on the Runtime.
	Generation uint64 `json:"generation"`
	// Status is serving or standby.
	Status Status `json:"status"`
	// Health is the result of the deploy-time probe.
	Health Health `json:"health"`
	// DeployedAt is when the version was loaded.
	DeployedAt time.Time `json:"deployed_at"`
	// Components are the component names and digests, in app order.
	Components []ComponentStatus `json:"components"`
	// App is the configuration the version was deployed with.
	App deploy.App `json:"app"`
}

// ComponentStatus is one component of a version.
type ComponentStatus struct {
	// Name is the component's name.
	Name string `json:"name"`
	// Digest is the digest of its module.
	Digest string `json:"digest"`
	// Executor is how it runs.
	Executor deploy.Executor `json:"executor"`
}

// Runtime serves deployed apps over HTTP. Create it with New; it implements
// http.Handler. All methods are safe for concurrent use.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	cache   wazero.CompilationCache
	metrics *metrics
	kv      *kvManager
	client  *http.Client

	engMu   sync.Mutex
	engines map[engKey]*engine

	modMu   sync.Mutex
	modules map[modKey]*moduleEntry

	mu     sync.Mutex // serialises table writers
	apps   map[string]*appSlot
	byHost map[string]map[string]struct{}
	table  atomic.Pointer[table]
	closed atomic.Bool
	gen    atomic.Uint64

	bg sync.WaitGroup // version drains

	// retiring holds the versions retired but not yet closed, whose guests
	// Close stops when its context ends.
	retiring sync.Map // *version -> struct{}

	budget memBudget // Options.MemoryBudget (budget.go)
	sched  *cpuSched // Options.CPUSlots (sched.go); nil: off

	logMu      sync.Mutex
	logBuckets map[string]*logBucket    // per app, see guestlog.go
	execSlots  map[string]chan struct{} // per app, see fairness.go
}

type appSlot struct {
	cur, prev *version
}

// table is an immutable routing snapshot. Host routers are sharded by a
// hash of the host name, so that a deploy copies one shard, not a map of
// every host (with 10,000 apps the copies were most of the garbage).
type table struct {
	hosts [hostShards]map[string]*router
	any   *router
}

const hostShards = 64

// shardOf returns the shard of a host key (FNV-1a).
func shardOf(h string) int {
	x := uint32(2166136261)
	for i := 0; i < len(h); i++ {
		x ^= uint32(h[i])
		x *= 16777619
	}
	return int(x % hostShards)
}

// router returns the router of host key h, or nil.
func (t *table) router(h string) *router { return t.hosts[shardOf(h)][h] }

// New creates a Runtime. It fails only when the state or cache directory
// cannot be created.
func New(opts Options) (*Runtime, error) {
	r := &Runtime{
		opts:    opts,
		log:     opts.Logger,
		engines: map[engKey]*engine{},
		modules: map[modKey]*moduleEntry{},
		apps:    map[string]*appSlot{},
		byHost:  map[string]map[string]struct{}{},
		client:  opts.OutboundClient,

		logBuckets: map[string]*logBucket{},
		execSlots:  map[string]chan struct{}{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: 30 * time.Second}
	}
	if r.opts.MaxRequestBytes <= 0 {
		r.opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if r.opts.ReactorMaxRequests <= 0 {
		r.opts.ReactorMaxRequests = DefaultReactorMaxRequests
	}
	if r.opts.HealthTimeout <= 0 {
		r.opts.HealthTimeout = DefaultHealthTimeout
	}
	if r.opts.GuestLogBytes == 0 {
		r.opts.GuestLogBytes = DefaultGuestLogBytes
	} else if r.opts.GuestLogBytes < 0 {
		r.opts.GuestLogBytes = 1<<63 - 1
	}
	if r.opts.GuestLogRate == 0 {
		r.opts.GuestLogRate = DefaultGuestLogRate
	}
	r.budget.max = opts.MemoryBudget
	r.sched = cpuSlots(opts)
	if r.opts.MemoryWait <= 0 {
		r.opts.MemoryWait = DefaultMemoryWait
	}
	if r.opts.StopGrace <= 0 {
		r.opts.StopGrace = DefaultStopGrace
	}
	if r.opts.GCBallast == 0 {
		r.opts.GCBallast = DefaultGCBallast
	}
	ensureBallast(r.opts.GCBallast)
	dir := opts.CompilationCacheDir
	if dir == "" && opts.StateDir != "" {
		dir = filepath.Join(opts.StateDir, "compile-cache")
	}
	if dir != "" {
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", dir, err)
		}
		r.cache = c
	} else {
		r.cache = wazero.NewCompilationCache()
	}
	kvDir := ""
	if opts.StateDir != "" {
		kvDir = filepath.Join(opts.StateDir, "kv")
	}
	r.kv = newKVManager(kvDir)
	r.metrics = newMetrics(r)
	if opts.Metrics != nil {
		if err := r.metrics.register(opts.Metrics); err != nil {
			return nil, fmt.Errorf("host: registering metrics: %w", err)
		}
	}
	r.metrics.budgetMax.Set(float64(opts.MemoryBudget))
	r.table.Store(&table{any: &router{}})
	return r, nil
}

var appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

// Deploy loads app (or a new version of it) and makes it serve. Every
// component's module is taken from b.Modules by digest, verified, compiled
// once per digest, and checked against the ABI: a malformed module, an
// import the host does not offer (named in the error) or a missing export
// is refused. Then the version's health probes run through the real handler,
// and only if they pass does the version take traffic, atomically. The
// version it replaces finishes its in-flight requests and stays loaded for
// Rollback; the one before that is unloaded. On any error the running
// version is left untouched. Before it returns, Deploy runs a garbage
// collection when its compile garbage brought the heap close to the next
// one (unless Options.NoDeployGC), so that the collection does not run
// beside the requests that follow.
func (r *Runtime) Deploy(ctx context.Context, app deploy.App, b Bundle) error {
	return r.deploy(ctx, app, b, false)
}

// Replace is Deploy for a new load of the version that serves now (the
// same artifact again, with new secrets or to heal it): the new version
// takes traffic the same way, but the version it replaces is unloaded and
// the previous version stays the one kept for Rollback, so that a rollback
// always goes to a different, older version. Without a running version it
// is Deploy.
func (r *Runtime) Replace(ctx context.Context, app deploy.App, b Bundle) error {
	return r.deploy(ctx, app, b, true)
}

func (r *Runtime) deploy(ctx context.Context, app deploy.App, b Bundle, replace bool) error {
	if r.closed.Load() {
		return ErrClosed
	}
	start := time.Now()
	v, err := r.load(ctx, app, b)
	if err != nil {
		return err
	}
	if err := r.probe(ctx, v); err != nil {
		r.retire(v)
		return err
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		r.retire(v)
		return ErrClosed
	}
	slot := r.apps[app.Name]
	var old *version
	if slot != nil {
		old = slot.cur
	}
	if err := r.swapLocked(app.Name, old, v); err != nil {
		r.mu.Unlock()
		r.retire(v)
		return err
	}
	var drop *version
	if slot == nil {
		r.apps[app.Name] = &appSlot{cur: v}
	} else if replace {
		drop = slot.cur
		slot.cur = v
	} else {
		drop = slot.prev
		slot.prev, slot.cur = slot.cur, v
	}
	r.mu.Unlock()
	if drop != nil {
		r.retire(drop)
	}
	r.collectIfDue()
	r.log.LogAttrs(ctx, slog.LevelInfo, "app deployed", slog.String("app", app.Name),
		slog.Uint64("generation", v.gen), slog.Duration("took", time.Since(start)))
	return nil
}

// Rollback makes the app's previous version serve again, instantly; the
// version it replaces becomes the previous one (so a second Rollback undoes
// the first). It returns ErrNotFound or ErrNoPrevious.
func (r *Runtime) Rollback(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	slot := r.apps[name]
	if slot == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if slot.prev == nil {
		return fmt.Errorf("%w: app %q", ErrNoPrevious, name)
	}
	if err := r.swapLocked(name, slot.cur, slot.prev); err != nil {
		return err
	}
	slot.cur, slot.prev = slot.prev, slot.cur
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "app rolled back", slog.String("app", name),
		slog.Uint64("generation", slot.cur.gen))
	return nil
}

// Delete stops serving the app and unloads its versions once their in-flight
// requests finish; guests still running after Options.StopGrace are stopped
// (their requests answer 503). It returns at once. Its key-value data stays
// on disk. It returns ErrNotFound when the app is not deployed.
func (r *Runtime) Delete(name string) error {
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return ErrClosed
	}
	slot := r.apps[name]
	if slot == nil {
		r.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err := r.swapLocked(name, slot.cur, nil); err != nil {
		r.mu.Unlock()
		return err
	}
	delete(r.apps, name)
	r.mu.Unlock()
	r.retireWithin(slot.cur, r.opts.StopGrace)
	if slot.prev != nil {
		r.retireWithin(slot.prev, r.opts.StopGrace)
	}
	r.kv.closeApp(name, &r.bg)
	r.metrics.forgetApp(name)
	r.forgetLogBucket(name)
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "app deleted", slog.String("app", name))
	return nil
}

// List returns the status of every deployed app, sorted by name.
func (r *Runtime) List() []AppStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]AppStatus, 0, len(r.apps))
	for _, name := range slices.Sorted(maps.Keys(r.apps)) {
		out = append(out, r.statusLocked(name))
	}
	return out
}

// App returns the status of one app, or ErrNotFound.
func (r *Runtime) App(name string) (AppStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.apps[name] == nil {
		return AppStatus{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return r.statusLocked(name), nil
}

func (r *Runtime) statusLocked(name string) AppStatus {
	slot := r.apps[name]
	s := AppStatus{Name: name, Current: slot.cur.status(StatusServing)}
	if slot.prev != nil {
		p := slot.prev.status(StatusStandby)
		s.Previous = &p
	}
	return s
}

// Close stops serving, waits (until ctx ends) for in-flight requests, then
// stops the guests still running (their requests answer 503) and waits a
// little more (stopDrainWait, 2 s) for them, and releases every module,
// instance, store and the compilation cache. So it returns at most about
// 2 s after ctx ends, whatever the guests do. The Runtime cannot be used
// afterwards.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return nil
	}
	var vs []*version
	for _, s := range r.apps {
		vs = append(vs, s.cur)
		if s.prev != nil {
			vs = append(vs, s.prev)
		}
	}
	r.apps = map[string]*appSlot{}
	r.table.Store(&table{any: &router{}})
	r.mu.Unlock()
	for _, v := range vs {
		r.retire(v)
	}
	done := make(chan struct{})
	go func() { r.bg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		r.retiring.Range(func(k, _ any) bool {
			k.(*version).stop("the runtime is closing")
			return true
		})
		select {
		case <-done:
		case <-time.After(stopDrainWait):
		}
	}
	err = errors.Join(err, r.kv.closeAll())
	r.engMu.Lock()
	for _, e := range r.engines {
		err = errors.Join(err, e.rt.Close(context.Background()))
	}
	r.engMu.Unlock()
	return errors.Join(err, r.cache.Close(context.Background()))
}

// swapLocked replaces version old of app name by nv (nil to remove) in the
// routing table, rebuilding only the routers of the host keys involved.
func (r *Runtime) swapLocked(name string, old, nv *version) error {
	keys := map[string]struct{}{}
	if old != nil {
		for _, h := range old.hostKeys() {
			keys[h] = struct{}{}
		}
	}
	if nv != nil {
		for _, h := range nv.hostKeys() {
			keys[h] = struct{}{}
		}
	}
	cur := r.table.Load()
	next := &table{hosts: cur.hosts, any: cur.any}
	var cloned [hostShards]bool
	// Build new routers before touching anything, so a conflict leaves all
	// as it was.
	built := map[string]*router{}
	for h := range keys {
		rt := &router{}
		for other := range r.byHost[h] {
			if other == name {
				continue
			}
			if err := r.apps[other].cur.addRoutes(rt); err != nil {
				return err
			}
		}
		if nv != nil && slices.Contains(nv.hostKeys(), h) {
			if err := nv.addRoutes(rt); err != nil {
				return err
			}
		}
		built[h] = rt
	}
	for h, rt := range built {
		set := r.byHost[h]
		if set == nil {
			set = map[string]struct{}{}
			r.byHost[h] = set
		}
		if nv != nil && slices.Contains(nv.hostKeys(), h) {
			set[name] = struct{}{}
		} else {
			delete(set, name)
		}
		if h == "" {
			next.any = rt
			continue
		}
		sh := shardOf(h)
		if !cloned[sh] {
			next.hosts[sh] = maps.Clone(cur.hosts[sh])
			if next.hosts[sh] == nil {
				next.hosts[sh] = map[string]*router{}
			}
			cloned[sh] = true
		}
		if len(set) == 0 {
			delete(next.hosts[sh], h)
			delete(r.byHost, h)
		} else {
			next.hosts[sh][h] = rt
		}
	}
	r.table.Store(next)
	return nil
}

// retire unloads v once its in-flight requests are done.
func (r *Runtime) retire(v *version) {
	v.retired.Store(true)
	if v.inflight.Load() == 0 {
		v.close()
		return
	}
	r.retiring.Store(v, struct{}{})
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		for v.inflight.Load() != 0 {
			time.Sleep(5 * time.Millisecond)
		}
		v.close()
		r.retiring.Delete(v)
	}()
}

// ServeHTTP routes the request by Host header and path to a component of a
// deployed app and runs it. It answers 404 when no route matches.
func (r *Runtime) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := req.URL.EscapedPath()
	host := hostKey(req.Host)
	// The match lives in the pooled callState the request will use.
	cs := callPool.Get().(*callState)
	m := &cs.mt
	found := false
	for range 8 {
		t := r.table.Load()
		*m = match{params: cs.mparams[:0]}
		ok := false
		if rt := t.router(host); rt != nil {
			ok = rt.lookup(path, m)
		}
		if !ok {
			ok = t.any.lookup(path, m)
		}
		if found = ok; !ok {
			break
		}
		v := m.t.v
		v.inflight.Add(1)
		if v.retired.Load() {
			// Swapped out between the table load and now: look again.
			v.inflight.Add(-1)
			continue
		}
		m.t.comp.serve(w, req, cs) // returns cs to the pool
		v.inflight.Add(-1)
		return
	}
	*m = match{}
	callPool.Put(cs)
	if !found {
		http.NotFound(w, req)
		return
	}
	http.Error(w, "routing table changing too fast", http.StatusServiceUnavailable)
}

// hostKey lower-cases a Host header and strips its port.
func hostKey(h string) string {
	if h == "" {
		return ""
	}
	if hh, _, err := splitHostPort(h); err == nil {
		h = hh
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// discard is an io.Writer used where guest output has nowhere to go.
var _ io.Writer = io.Discard

var _ http.Handler = (*Runtime)(nil)
