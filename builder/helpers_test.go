package builder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// writeFiles writes files (slash path → content) below dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const guestGoMod = "module example.com/guest\n\ngo 1.26\n"

// wagiGuest is a Go WAGI program importing a package of its own module.
var wagiGuest = map[string]string{
	"go.mod": guestGoMod,
	"main.go": `package main

import (
	"fmt"

	"example.com/guest/greet"
)

func main() { fmt.Print("Content-Type: text/plain\n\n" + greet.Hello() + "\n") }
`,
	"greet/greet.go": `package greet

// Hello returns the greeting.
func Hello() string { return "hello from go" }
`,
	"greet/greet_test.go": "package greet\n",
	"README.md":           "not a build input of the package\n",
}

// reactorGuest is a Go reactor exporting ferry_handle.
var reactorGuest = map[string]string{
	"go.mod": guestGoMod,
	"main.go": `package main

//go:wasmexport ferry_handle
func handle() int32 { return 42 }

func main() {}
`,
}

// goComponent returns a KindGo component for the program in dir.
func goComponent(name, dir, executor string) Component {
	return Component{App: "app", Name: name, Kind: KindGo, Dir: dir, GoPackage: dir, Executor: executor}
}

// newTestBuilder returns a Builder with a fresh cache directory.
func newTestBuilder(t testing.TB, opts Options) *Builder {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	return New(opts)
}

// buildOne builds c and fails the test on error.
func buildOK(t testing.TB, b *Builder, c Component) Result {
	t.Helper()
	res, err := b.Build(context.Background(), []Component{c})
	if err != nil {
		t.Fatalf("Build(%s): %v", c.ID(), err)
	}
	return res[0]
}

// runWAGI runs a WASI command module with wazero and returns its stdout.
func runWAGI(t testing.TB, wasm []byte) string {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var stdout bytes.Buffer
	_, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStdout(&stdout).WithStderr(&stdout))
	if err != nil {
		t.Fatalf("run module: %v (output %q)", err, stdout.String())
	}
	return stdout.String()
}

// readFixture reads testdata/name.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
