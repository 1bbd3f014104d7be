package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Options configure a Builder. The zero value is usable: every field has a
// default, given in its comment.
type Options struct {
	// CacheDir holds the content-addressed build cache. A relative path is
	// taken relative to the working directory when New is called (tools
	// run in other directories never see it relative). Default:
	// $XDG_CACHE_HOME/ferry/build, or ~/.cache/ferry/build.
	CacheDir string
	// Parallelism is the most components built at once. Default:
	// runtime.NumCPU().
	Parallelism int
	// GoBinary is the go command used for Go components, a name looked up
	// on PATH or a path. Default: "go".
	GoBinary string
	// Progress, when set, receives one line per component as it starts,
	// finishes, fails or is found in the cache, with the elapsed time. The
	// CLI passes os.Stderr when it is a terminal. Default: no progress.
	Progress io.Writer
	// Logger receives debug and warning records (a corrupt cache entry, the
	// commands run). Default: records are discarded.
	Logger *slog.Logger
	// User, when set and not the builder's own user, is the account every
	// Go build and build command runs as (switching needs root). It cannot
	// read the builder's environment, memory or 0600 files. Default: the
	// builder's own user; see the package documentation for what that
	// leaves open.
	User *User
	// WorkDir holds the scratch copies builds run in (removed after each
	// build) and, in u<uid>/, the build user's Go build and module caches.
	// With another User, WorkDir and every directory above it must be
	// searchable by others. A relative path is taken relative to the
	// working directory when New is called. Default: ferry-build in
	// os.TempDir().
	WorkDir string
}

// Builder builds components into checked Wasm modules, with a
// content-addressed cache. It is safe for concurrent use; create it with
// New.
type Builder struct {
	cacheDir    string // absolute, unless cacheErr is set
	cacheErr    error  // why cacheDir could not be made absolute
	parallelism int
	goBinary    string
	progress    io.Writer
	log         *slog.Logger
	user        *User
	workDir     string // absolute, unless workErr is set
	workErr     error

	dirMu      sync.Mutex
	stateReady string // WorkDir/u<uid>, once made

	progressMu sync.Mutex

	toolMu sync.Mutex
	tool   *goToolchain // resolved once, on first Go component

	keyMu    sync.Mutex
	keyLocks map[string]*keyLock // one build per key at a time
}

// keyLock serialises builds of one key; n counts its holders and waiters so
// the map entry goes away with the last of them.
type keyLock struct {
	mu sync.Mutex
	n  int
}

// lockKey blocks until no other build of key runs and returns the unlock
// function.
func (b *Builder) lockKey(key string) func() {
	b.keyMu.Lock()
	if b.keyLocks == nil {
		b.keyLocks = map[string]*keyLock{}
	}
	l := b.keyLocks[key]
	if l == nil {
		l = &keyLock{}
		b.keyLocks[key] = l
	}
	l.n++
	b.keyMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		b.keyMu.Lock()
		if l.n--; l.n == 0 {
			delete(b.keyLocks, key)
		}
		b.keyMu.Unlock()
	}
}

// New returns a Builder with opts, defaults filled in.
func New(opts Options) *Builder {
	b := &Builder{
		cacheDir:    opts.CacheDir,
		parallelism: opts.Parallelism,
		goBinary:    opts.GoBinary,
		progress:    opts.Progress,
		log:         opts.Logger,
		user:        opts.User,
		workDir:     opts.WorkDir,
	}
	if b.workDir == "" {
		b.workDir = filepath.Join(os.TempDir(), "ferry-build")
	}
	if abs, err := filepath.Abs(b.workDir); err != nil {
		b.workErr = fmt.Errorf("%w: %s: %v", ErrBuildDir, b.workDir, err)
	} else {
		b.workDir = abs
	}
	if b.cacheDir == "" {
		b.cacheDir = defaultCacheDir()
	}
	// Go builds and commands run in the component's directory: a relative
	// cache path would name another place there.
	if abs, err := filepath.Abs(b.cacheDir); err != nil {
		b.cacheErr = fmt.Errorf("cache directory %s: %w", b.cacheDir, err)
	} else {
		b.cacheDir = abs
	}
	if b.parallelism <= 0 {
		b.parallelism = runtime.NumCPU()
	}
	if b.goBinary == "" {
		b.goBinary = "go"
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ferry", "build")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "ferry", "build")
	}
	return filepath.Join(os.TempDir(), "ferry-build-cache")
}

// CacheDir returns the absolute directory of the build cache.
func (b *Builder) CacheDir() string { return b.cacheDir }

// Result is the outcome of building one component.
type Result struct {
	// Component is the input, unchanged.
	Component Component
	// Wasm is the checked module; nil when Err is set.
	Wasm []byte
	// Digest is "sha256:<hex>" of Wasm.
	Digest string
	// Key is the hex SHA-256 of every input of the build; it names the
	// cache entry. Empty if the inputs could not be read.
	Key string
	// Cached reports that Wasm came from the cache and no tool ran.
	Cached bool
	// Duration is the wall time spent on this component.
	Duration time.Duration
	// Err is this component's error, a *BuildError; nil on success.
	Err error
}

// Build builds comps, at most Options.Parallelism at a time, and returns one
// Result per component in the same order. A failing component does not stop
// the others: its Result.Err is set, and the returned error joins the errors
// of all failed components (nil if all succeeded). Cancelling ctx kills the
// running tools; the components not yet built fail with ctx's error.
func (b *Builder) Build(ctx context.Context, comps []Component) ([]Result, error) {
	results := make([]Result, len(comps))
	sem := make(chan struct{}, b.parallelism)
	var wg sync.WaitGroup
	for i := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Component: comps[i], Err: &BuildError{Component: comps[i].ID(), Op: "build", Err: ctx.Err()}}
				return
			}
			defer func() { <-sem }()
			results[i] = b.buildOne(ctx, comps[i], i+1, len(comps))
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return results, errors.Join(errs...)
}

// buildOne builds one component: key, cache lookup, build, check, store.
func (b *Builder) buildOne(ctx context.Context, c Component, n, total int) Result {
	start := time.Now()
	res := Result{Component: c}
	fail := func(op string, err error, output string) Result {
		res.Err = &BuildError{Component: c.ID(), Op: op, Err: err, Output: output}
		res.Duration = time.Since(start)
		b.report(n, total, "FAILED", c, res.Duration, "")
		return res
	}
	if err := ctx.Err(); err != nil {
		return fail("build", err, "")
	}
	if err := c.validate(); err != nil {
		return fail("validate", err, "")
	}
	if err := c.contained(); err != nil {
		return fail("validate", err, "")
	}
	if b.cacheErr != nil {
		return fail("cache", b.cacheErr, "")
	}
	var tool *goToolchain
	if c.Kind == KindGo {
		var err error
		if tool, err = b.goToolchain(ctx); err != nil {
			return fail("toolchain", err, "")
		}
	}
	key, err := b.key(c, tool)
	if err != nil {
		return fail("hash", err, "")
	}
	res.Key = key

	defer b.lockKey(key)()

	cache := cacheDir(b.cacheDir)
	if wasm, digest, err := cache.get(key); err == nil {
		res.Wasm, res.Digest, res.Cached = wasm, digest, true
		res.Duration = time.Since(start)
		b.log.Debug("build cached", "component", c.ID(), "key", key, "digest", digest)
		b.report(n, total, "cached", c, res.Duration, digest)
		return res
	} else if !errors.Is(err, os.ErrNotExist) {
		b.log.Warn("corrupt build cache entry, rebuilding", "component", c.ID(), "key", key, "error", err)
	}

	b.report(n, total, "building", c, 0, "")
	var wasm []byte
	var output string
	switch c.Kind {
	case KindGo:
		wasm, output, err = b.buildGo(ctx, c, tool)
	case KindCommand:
		wasm, output, err = b.buildCommand(ctx, c)
	case KindWasm:
		wasm, err = readInside(c.root(), c.Wasm, "wasm file")
	}
	if err != nil {
		return fail("build", err, output)
	}
	if err := check(ctx, wasm, c.executor()); err != nil {
		return fail("check", err, "")
	}
	digest, err := cache.put(key, wasm, c)
	if err != nil {
		return fail("cache", err, "")
	}
	res.Wasm, res.Digest = wasm, digest
	res.Duration = time.Since(start)
	b.log.Debug("built", "component", c.ID(), "key", key, "digest", digest, "duration", res.Duration)
	b.report(n, total, "built", c, res.Duration, digest)
	return res
}

// report writes one progress line.
func (b *Builder) report(n, total int, what string, c Component, d time.Duration, digest string) {
	if b.progress == nil {
		return
	}
	line := fmt.Sprintf("[%d/%d] %-8s %s (%s, %s)", n, total, what, c.ID(), c.Kind, c.executor())
	if what != "building" {
		line += fmt.Sprintf(" in %s", d.Round(time.Millisecond))
	}
	if len(digest) > len("sha256:")+12 {
		line += " " + digest[:len("sha256:")+12]
	}
	b.progressMu.Lock()
	defer b.progressMu.Unlock()
	fmt.Fprintln(b.progress, line)
}
