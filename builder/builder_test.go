package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

func TestBuildGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		executor string
		exports  []string
	}{
		{"wagi", wagiGuest, "", []string{"_start"}},
		{"reactor", reactorGuest, ExecutorReactor, []string{"_initialize", "ferry_handle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			var progress bytes.Buffer
			b := newTestBuilder(t, Options{Progress: &progress})
			res := buildOK(t, b, goComponent(tt.name, dir, tt.executor))
			sum := sha256.Sum256(res.Wasm)
			if want := "sha256:" + hex.EncodeToString(sum[:]); res.Digest != want {
				t.Errorf("Digest = %s, want %s", res.Digest, want)
			}
			if res.Cached || len(res.Key) != 64 {
				t.Errorf("Cached = %v, Key = %q; want a fresh build with a hex key", res.Cached, res.Key)
			}
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
			defer r.Close(ctx)
			m, err := r.CompileModule(ctx, res.Wasm)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.exports {
				if _, ok := m.ExportedFunctions()[e]; !ok {
					t.Errorf("module does not export %s", e)
				}
			}
			switch tt.executor {
			case "":
				if got, want := runWAGI(t, res.Wasm), "Content-Type: text/plain\n\nhello from go\n"; got != want {
					t.Errorf("output = %q, want %q", got, want)
				}
			case ExecutorReactor:
				wasi_snapshot_preview1.MustInstantiate(ctx, r)
				mod, err := r.InstantiateModule(ctx, m, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
				if err != nil {
					t.Fatal(err)
				}
				out, err := mod.ExportedFunction("ferry_handle").Call(ctx)
				if err != nil || len(out) != 1 || out[0] != 42 {
					t.Errorf("ferry_handle() = %v, %v; want [42]", out, err)
				}
			}
			if got := progress.String(); !strings.Contains(got, "building app/"+tt.name) || !strings.Contains(got, "built    app/"+tt.name) {
				t.Errorf("progress does not show start and finish:\n%s", got)
			}
		})
	}
}

// TestBuildGoInRepo builds a guest inside this repository with the
// repository's own go.mod; it imports a package of the module.
func TestBuildGoInRepo(t *testing.T) {
	t.Parallel()
	root := testenv.RepoRoot(t)
	c := goComponent("guest", filepath.Join(root, "builder", "testdata", "guest"), "")
	c.Dir = root
	res := buildOK(t, newTestBuilder(t, Options{}), c)
	if got, want := runWAGI(t, res.Wasm), "Content-Type: text/plain\n\nhello from ferry\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	src, err := goSources(c.GoPackage)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "go.sum", "builder/testdata/guest/main.go", "targets/host/abi/abi.go"} {
		if _, ok := src.files[f]; !ok {
			t.Errorf("key does not cover %s (covers %v)", f, src.files)
		}
	}
}

func TestBuildCommand(t *testing.T) {
	// Not parallel: it sets an environment variable that must not leak.
	t.Setenv("FERRY_TEST_LEAK", "secret")
	fixture, err := filepath.Abs(filepath.Join("testdata", "wagi.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"src/input.txt": "v1", "notes.md": "x"})
	c := Component{
		App: "app", Name: "cmd", Kind: KindCommand, Dir: dir, Workdir: dir,
		Output: filepath.Join(dir, "out", "app.wasm"),
		// The declared env is there, the parent's is not, and the
		// command runs in Workdir.
		Command: `test -z "$FERRY_TEST_LEAK" && test "$MODE" = release && test -f src/input.txt && mkdir -p out && cp "$FIXTURE" out/app.wasm`,
		Env:     map[string]string{"MODE": "release", "FIXTURE": fixture},
	}
	b := newTestBuilder(t, Options{})
	first := buildOK(t, b, c)
	if want := readFixture(t, "wagi.wasm"); !bytes.Equal(first.Wasm, want) {
		t.Fatalf("Wasm is not the command's output")
	}
	if got := runWAGI(t, first.Wasm); got != "hello" {
		t.Errorf("output = %q, want hello", got)
	}
	// The output itself is not an input: building again is cached.
	if again := buildOK(t, b, c); !again.Cached || again.Key != first.Key {
		t.Errorf("second build: Cached = %v, key %s vs %s; want cached, same key", again.Cached, again.Key, first.Key)
	}
	// Any file under Workdir is an input by default.
	writeFiles(t, dir, map[string]string{"notes.md": "y"})
	if r := buildOK(t, b, c); r.Cached {
		t.Errorf("build after changing notes.md was cached")
	}
	// With Watch, only the matched files are.
	c.Watch = []string{"src/**/*.txt"}
	w1 := buildOK(t, b, c)
	writeFiles(t, dir, map[string]string{"notes.md": "z"})
	if r := buildOK(t, b, c); !r.Cached || r.Key != w1.Key {
		t.Errorf("change outside Watch rebuilt: Cached = %v", r.Cached)
	}
	writeFiles(t, dir, map[string]string{"src/input.txt": "v2"})
	if r := buildOK(t, b, c); r.Cached {
		t.Errorf("change inside Watch was cached")
	}
}

func TestBuildCommandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command string
		wantErr error
		want    []string
	}{
		{"fails", `echo "compile: bad token at line 3" >&2; exit 2`, ErrBuildFailed, []string{"app/fails", "compile: bad token at line 3", "exit status 2"}},
		{"no output", `true`, ErrOutputMissing, []string{"app/no output", "out.wasm"}},
		{"not wasm", `echo hello > out.wasm`, ErrInvalidModule, []string{"app/not wasm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := Component{App: "app", Name: tt.name, Kind: KindCommand, Workdir: dir, Output: filepath.Join(dir, "out.wasm"), Command: tt.command}
			res, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{c})
			if !errors.Is(err, tt.wantErr) || !errors.Is(res[0].Err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if res[0].Wasm != nil || res[0].Digest != "" {
				t.Errorf("failed result carries a module")
			}
		})
	}
}

func TestBuildWasm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture  string
		executor string
		wantErr  error
		want     []string // substrings of the error
	}{
		{"wagi.wasm", "", nil, nil},
		{"reactor.wasm", ExecutorReactor, nil, nil},
		{"reactor.wasm", ExecutorWAGI, ErrMissingExport, []string{"_start"}},
		{"wagi.wasm", ExecutorReactor, ErrMissingExport, []string{"_initialize", "ferry_handle"}},
		{"env_import.wasm", "", ErrImportNotOffered, []string{"env.foo", "ferry.nope"}},
		{"memory_import.wasm", "", ErrImportNotOffered, []string{"env.memory (memory)"}},
		{"global_import.wasm", "", ErrImportNotOffered, []string{"env.g (global), env.t (table)"}},
		{"no_start.wasm", "", ErrMissingExport, []string{"_start"}},
		{"bad_start.wasm", "", ErrMissingExport, []string{"_start with type () -> () (it has (i32) -> ())"}},
		{"wagi.wat", "", ErrInvalidModule, nil}, // text, not binary
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.executor, func(t *testing.T) {
			t.Parallel()
			path, err := filepath.Abs(filepath.Join("testdata", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			c := Component{App: "app", Name: "prebuilt", Kind: KindWasm, Wasm: path, Executor: tt.executor}
			res, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{c})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(res[0].Wasm, readFixture(t, tt.fixture)) {
					t.Errorf("Wasm differs from the file")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range append(tt.want, "app/prebuilt: check") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCheckMalformedBytes(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x01\x00\x00\x00\x01\xff"), bytes.Repeat([]byte{0xff}, 64)} {
		if err := check(context.Background(), b, ExecutorWAGI); !errors.Is(err, ErrInvalidModule) {
			t.Errorf("check(%q) = %v, want ErrInvalidModule", b, err)
		}
	}
}

func TestGoCompileError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod":  guestGoMod,
		"main.go": "package main\n\nfunc main() { undefinedThing() }\n",
	})
	res, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{goComponent("broken", dir, "")})
	if !errors.Is(err, ErrBuildFailed) {
		t.Fatalf("err = %v, want ErrBuildFailed", err)
	}
	t.Logf("compile error: %v", err)
	var be *BuildError
	if !errors.As(res[0].Err, &be) || be.Component != "app/broken" {
		t.Fatalf("Err = %#v, want a BuildError for app/broken", res[0].Err)
	}
	for _, w := range []string{"app/broken: build", "main.go:3:15: undefined: undefinedThing"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), dir) {
		t.Errorf("error shows the absolute path (-trimpath expected): %s", err)
	}
}

func TestMissingToolchain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, wagiGuest)
	for _, bin := range []string{"/nonexistent/go", "ferry-no-such-go"} {
		_, err := newTestBuilder(t, Options{GoBinary: bin}).Build(context.Background(), []Component{goComponent("web", dir, "")})
		if !errors.Is(err, ErrToolchainMissing) {
			t.Fatalf("GoBinary %s: err = %v, want ErrToolchainMissing", bin, err)
		}
		t.Logf("GoBinary %s: %v", bin, err)
		for _, w := range []string{"app/web", bin, "install Go 1.26+ or set GoBinary"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
}

func TestInvalidComponent(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	tests := []struct {
		name string
		c    Component
		want string
	}{
		{"unknown kind", Component{Kind: "rust"}, `unknown kind "rust"`},
		{"unknown executor", Component{Kind: KindWasm, Wasm: "/x.wasm", Executor: "spin"}, `unknown executor "spin"`},
		{"relative", Component{Kind: KindGo, GoPackage: "cmd/web"}, "is not absolute"},
		{"empty", Component{Kind: KindWasm}, "wasm path is empty"},
		{"escapes", Component{Kind: KindGo, Dir: root, GoPackage: filepath.Dir(root)}, "escapes"},
		{"empty command", Component{Kind: KindCommand, Workdir: root, Output: root + "/o.wasm"}, "command is empty"},
		{"watch escapes", Component{Kind: KindCommand, Command: "true", Workdir: root, Output: root + "/o.wasm", Watch: []string{"../*.go"}}, "leaves the work directory"},
		{"output escapes", Component{Kind: KindCommand, Command: "true", Dir: root, Workdir: root, Output: "/tmp/o.wasm"}, "escapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.c.App, tt.c.Name = "app", "c"
			_, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{tt.c})
			if !errors.Is(err, ErrInvalidComponent) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidComponent with %q", err, tt.want)
			}
		})
	}
}

// countingGo writes a wrapper around the real go command that logs each
// invocation's arguments to a file, and returns the wrapper and the log.
func countingGo(t testing.TB) (string, string) {
	t.Helper()
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	wrapper := filepath.Join(dir, "go")
	script := "#!/bin/sh\necho \"$*\" >> " + strconv.Quote(log) + "\nexec " + strconv.Quote(realGo) + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// A child forked by a parallel test while the file was open for
	// writing holds that descriptor until it execs, and exec of the
	// script fails meanwhile with "text file busy" (golang/go#22315). Once
	// one run succeeds no such descriptor is left, and none can appear.
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err := exec.Command(wrapper, "env", "GOVERSION").CombinedOutput()
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			t.Fatalf("running the go wrapper: %v\n%s", err, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	return wrapper, log
}

// goCalls returns the subcommands the wrapper logged ("build", "env", ...).
func goCalls(t testing.TB, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		calls = append(calls, strings.Fields(l)[0])
	}
	return calls
}

func TestCacheGo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, wagiGuest)
	wrapper, log := countingGo(t)
	cacheDir := t.TempDir()
	var progress bytes.Buffer
	opts := Options{CacheDir: cacheDir, GoBinary: wrapper, Progress: &progress}
	b := New(opts)
	c := goComponent("web", dir, "")

	first := buildOK(t, b, c)
	if diff := cmp.Diff([]string{"env", "build"}, goCalls(t, log)); diff != "" {
		t.Fatalf("first build ran (-want +got):\n%s", diff)
	}
	second := buildOK(t, b, c)
	if !second.Cached || second.Digest != first.Digest || !bytes.Equal(second.Wasm, first.Wasm) {
		t.Fatalf("second build: Cached = %v, digest %s vs %s", second.Cached, second.Digest, first.Digest)
	}
	if !strings.Contains(progress.String(), "cached   app/web") {
		t.Errorf("progress does not report the cached build:\n%s", progress.String())
	}
	// A new Builder (a new process) asks the toolchain its version only.
	third := buildOK(t, New(opts), c)
	if diff := cmp.Diff([]string{"env", "build", "env"}, goCalls(t, log)); diff != "" || !third.Cached {
		t.Fatalf("cached builds ran the toolchain (-want +got):\n%s", diff)
	}

	// Files that are not build inputs do not rebuild.
	writeFiles(t, dir, map[string]string{"README.md": "changed", "greet/greet_test.go": "package greet\n\n// changed\n"})
	if r := buildOK(t, b, c); !r.Cached {
		t.Errorf("a change to README.md or a _test.go file rebuilt")
	}
	// One byte of an imported package rebuilds.
	writeFiles(t, dir, map[string]string{"greet/greet.go": strings.Replace(wagiGuest["greet/greet.go"], "hello from go", "hello from Go", 1)})
	changed := buildOK(t, b, c)
	if changed.Cached || changed.Key == first.Key || changed.Digest == first.Digest {
		t.Errorf("after a source change: Cached = %v, same key %v, same digest %v", changed.Cached, changed.Key == first.Key, changed.Digest == first.Digest)
	}
	if got := runWAGI(t, changed.Wasm); !strings.Contains(got, "hello from Go") {
		t.Errorf("rebuilt module prints %q", got)
	}
	// Build settings are inputs too.
	c.Env = map[string]string{"GOFLAGS": "-tags=extra"}
	if r := buildOK(t, b, c); r.Cached || r.Key == changed.Key {
		t.Errorf("a change of the declared Env was cached")
	}
	if n := strings.Count(strings.Join(goCalls(t, log), " "), "build"); n != 3 {
		t.Errorf("go build ran %d times, want 3", n)
	}
}

func TestCacheCorruptEntryRebuilt(t *testing.T) {
	t.Parallel()
	path, err := filepath.Abs(filepath.Join("testdata", "wagi.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	c := Component{App: "app", Name: "w", Kind: KindWasm, Wasm: path}
	corruptions := []struct {
		name    string
		corrupt func(t *testing.T, cache, key string)
	}{
		{"flipped byte", func(t *testing.T, cache, key string) {
			p := filepath.Join(cache, key+".wasm")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 0xff
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, cache, key string) {
			if err := os.Truncate(filepath.Join(cache, key+".wasm"), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"module missing", func(t *testing.T, cache, key string) {
			if err := os.Remove(filepath.Join(cache, key+".wasm")); err != nil {
				t.Fatal(err)
			}
		}},
		{"bad record", func(t *testing.T, cache, key string) {
			if err := os.WriteFile(filepath.Join(cache, key+".json"), []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range corruptions {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			var logs syncWriter
			b := New(Options{CacheDir: cache, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			first := buildOK(t, b, c)
			tt.corrupt(t, cache, first.Key)
			r := buildOK(t, b, c)
			if r.Cached || r.Digest != first.Digest || !bytes.Equal(r.Wasm, readFixture(t, "wagi.wasm")) {
				t.Fatalf("after corruption: Cached = %v, digest %s, want a rebuild with %s", r.Cached, r.Digest, first.Digest)
			}
			if r := buildOK(t, b, c); !r.Cached {
				t.Errorf("the rebuilt entry is not used")
			}
			if got := logs.String(); !strings.Contains(got, "corrupt build cache entry") || !strings.Contains(got, "component=app/w") {
				t.Errorf("no warning logged for the corrupt entry:\n%s", got)
			}
		})
	}
}

// TestParallel builds a mix of components at once, from several goroutines
// sharing one Builder (run with -race).
func TestParallel(t *testing.T) {
	t.Parallel()
	wagiDir, reactorDir := t.TempDir(), t.TempDir()
	writeFiles(t, wagiDir, wagiGuest)
	writeFiles(t, reactorDir, reactorGuest)
	fixture, _ := filepath.Abs(filepath.Join("testdata", "wagi.wasm"))
	bad, _ := filepath.Abs(filepath.Join("testdata", "env_import.wasm"))
	var comps []Component
	comps = append(comps, goComponent("go-wagi", wagiDir, ""), goComponent("go-reactor", reactorDir, ExecutorReactor))
	for i := range 6 {
		w := t.TempDir()
		writeFiles(t, w, map[string]string{"in.txt": strconv.Itoa(i)})
		comps = append(comps, Component{App: "app", Name: "cmd" + strconv.Itoa(i), Kind: KindCommand, Workdir: w,
			Output: filepath.Join(w, "out.wasm"), Command: "cp " + fixture + " out.wasm"})
	}
	comps = append(comps, Component{App: "app", Name: "bad", Kind: KindWasm, Wasm: bad})

	wrapper, log := countingGo(t)
	b := New(Options{CacheDir: t.TempDir(), Parallelism: 3, Progress: &syncWriter{}, GoBinary: wrapper})
	var wg sync.WaitGroup
	all := make([][]Result, 4)
	for g := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.Build(context.Background(), comps)
			if !errors.Is(err, ErrImportNotOffered) {
				t.Errorf("goroutine %d: err = %v, want only the bad component's error", g, err)
			}
			all[g] = res
		}()
	}
	wg.Wait()
	for g, res := range all {
		if len(res) != len(comps) {
			t.Fatalf("goroutine %d: %d results for %d components", g, len(res), len(comps))
		}
		for i, r := range res {
			if r.Component.Name != comps[i].Name {
				t.Errorf("result %d is %s, want %s (order)", i, r.Component.Name, comps[i].Name)
			}
			if (r.Err != nil) != (comps[i].Name == "bad") {
				t.Errorf("goroutine %d, %s: Err = %v", g, r.Component.ID(), r.Err)
			}
			if r.Digest != all[0][i].Digest {
				t.Errorf("goroutine %d, %s: digest %s differs from %s", g, r.Component.ID(), r.Digest, all[0][i].Digest)
			}
		}
	}
	// Concurrent builds of one key wait for each other: each Go component
	// was compiled once, however many goroutines asked for it.
	if diff := cmp.Diff([]string{"build", "build", "env"}, sortedCopy(goCalls(t, log))); diff != "" {
		t.Errorf("toolchain calls (-want +got):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// syncWriter is a goroutine-safe progress sink.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestReproducible builds the same sources in two directories, with
// separate builder caches and separate Go build caches, so nothing is
// shared but the module cache: the digests and keys must be equal.
func TestReproducible(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		files    map[string]string
		executor string
	}{
		{"wagi", wagiGuest, ""},
		{"reactor", reactorGuest, ExecutorReactor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var results []Result
			for i, gocache := range []string{"", t.TempDir()} {
				dir := filepath.Join(t.TempDir(), "checkout"+strconv.Itoa(i), "src")
				writeFiles(t, dir, tt.files)
				c := goComponent(tt.name, dir, tt.executor)
				if gocache != "" {
					c.Env = map[string]string{"GOCACHE": gocache}
				}
				results = append(results, buildOK(t, newTestBuilder(t, Options{}), c))
			}
			if results[0].Digest != results[1].Digest {
				t.Errorf("digests differ across directories: %s vs %s", results[0].Digest, results[1].Digest)
			}
			if results[0].Cached || results[1].Cached {
				t.Errorf("a build was cached; both must be real builds")
			}
		})
	}
}

// TestKeyLocationIndependent: the same sources in two directories have the
// same key, so checkouts share the cache.
func TestKeyLocationIndependent(t *testing.T) {
	t.Parallel()
	b := newTestBuilder(t, Options{})
	tool, err := b.goToolchain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for range 2 {
		dir := t.TempDir()
		writeFiles(t, dir, wagiGuest)
		k, err := b.key(goComponent("web", dir, ""), tool)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if keys[0] != keys[1] {
		t.Errorf("keys differ: %v", keys)
	}
}

func TestCancelKillsBuild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The command runs in a scratch copy of dir: it reports its child's
	// pid to a file outside.
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := Component{App: "app", Name: "slow", Kind: KindCommand, Workdir: dir, Output: filepath.Join(dir, "out.wasm"),
		Command: "sleep 60 & echo $! > '" + pidFile + "'; wait"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := newTestBuilder(t, Options{}).Build(ctx, []Component{c})
		done <- err
	}()
	var pid int
	for pid == 0 {
		select {
		case err := <-done:
			t.Fatalf("Build returned before the command started: %v", err)
		default:
		}
		data, _ := os.ReadFile(pidFile)
		if s := strings.TrimSpace(string(data)); s != "" {
			pid, _ = strconv.Atoi(s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "app/slow") {
		t.Fatalf("err = %v, want context.Canceled for app/slow", err)
	}
	// The shell's child is killed with it (a zombie awaiting its reaper
	// counts as dead).
	for i := 0; processAlive(pid); i++ {
		if i == 500 {
			t.Fatalf("process %d still runs after cancel", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Field 3, after "pid (comm)", is the state.
	s := string(stat)
	return !strings.HasPrefix(strings.TrimSpace(s[strings.LastIndex(s, ")")+1:]), "Z")
}
