package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSourcesStayInside: a component's files are untrusted repository
// content. A prebuilt wasm file or a Go source that is a symbolic link to a
// file outside the component's root must be refused, naming the link and
// showing nothing of the outside file.
func TestSourcesStayInside(t *testing.T) {
	outside := t.TempDir()
	secretWasm := readFixture(t, "wagi.wasm") // a valid module, so only containment can refuse it
	if err := os.WriteFile(filepath.Join(outside, "secret.wasm"), secretWasm, 0o644); err != nil {
		t.Fatal(err)
	}
	const secretGo = "package main\n\n// outside-secret-marker\nfunc main() {}\n"
	os.WriteFile(filepath.Join(outside, "main.go"), []byte(secretGo), 0o644)

	t.Run("wasm symlink to an outside file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Symlink(filepath.Join(outside, "secret.wasm"), filepath.Join(dir, "app.wasm")); err != nil {
			t.Fatal(err)
		}
		c := Component{App: "app", Name: "web", Kind: KindWasm, Dir: dir, Wasm: filepath.Join(dir, "app.wasm")}
		res, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{c})
		if err == nil {
			t.Fatalf("a wasm file outside the root was built (%s)", res[0].Digest)
		}
		if !errors.Is(err, ErrOutsideRoot) || !strings.Contains(err.Error(), "app.wasm") {
			t.Fatalf("err = %v; want ErrOutsideRoot naming app.wasm", err)
		}
	})

	t.Run("Go source symlink to an outside file", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"go.mod": guestGoMod})
		if err := os.Symlink(filepath.Join(outside, "main.go"), filepath.Join(dir, "main.go")); err != nil {
			t.Fatal(err)
		}
		res, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{goComponent("web", dir, "")})
		if err == nil {
			t.Fatalf("a Go package reading an outside file was built (%s)", res[0].Digest)
		}
		if !errors.Is(err, ErrOutsideRoot) || !strings.Contains(err.Error(), "main.go") {
			t.Fatalf("err = %v; want ErrOutsideRoot naming main.go", err)
		}
		if strings.Contains(err.Error(), "outside-secret-marker") {
			t.Fatalf("the error shows the outside file: %v", err)
		}
	})

	t.Run("Go package directory symlinked outside", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"go.mod": guestGoMod, "main.go": "package main\n\nimport _ \"example.com/guest/lib\"\n\nfunc main() {}\n"})
		lib := filepath.Join(outside, "lib")
		writeFiles(t, lib, map[string]string{"lib.go": "package lib\n"})
		if err := os.Symlink(lib, filepath.Join(dir, "lib")); err != nil {
			t.Fatal(err)
		}
		_, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{goComponent("web", dir, "")})
		if !errors.Is(err, ErrOutsideRoot) || !strings.Contains(err.Error(), "lib") {
			t.Fatalf("err = %v; want ErrOutsideRoot naming lib", err)
		}
	})

	t.Run("Go module root above the component root", func(t *testing.T) {
		mod := t.TempDir()
		writeFiles(t, mod, map[string]string{"go.mod": guestGoMod, "app/main.go": "package main\n\nfunc main() {}\n"})
		c := goComponent("web", filepath.Join(mod, "app"), "")
		_, err := newTestBuilder(t, Options{}).Build(context.Background(), []Component{c})
		if !errors.Is(err, ErrOutsideRoot) || !strings.Contains(err.Error(), "go.mod") {
			t.Fatalf("err = %v; want ErrOutsideRoot naming go.mod", err)
		}
		// With Root at the module (the repository root), it builds.
		c.Root = mod
		buildOK(t, newTestBuilder(t, Options{}), c)
	})

	t.Run("symlinks that stay inside are fine", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, wagiGuest)
		os.WriteFile(filepath.Join(dir, "real.wasm"), secretWasm, 0o644)
		os.Symlink("real.wasm", filepath.Join(dir, "app.wasm"))
		os.Symlink("greet", filepath.Join(dir, "alias"))
		b := newTestBuilder(t, Options{})
		buildOK(t, b, Component{App: "app", Name: "wasm", Kind: KindWasm, Dir: dir, Wasm: filepath.Join(dir, "app.wasm")})
		buildOK(t, b, goComponent("web", dir, ""))
	})
}
