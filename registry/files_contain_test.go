package registry_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/registry"
)

// TestPackFilesBeyondSymlink: a declared path below a directory that is a
// symbolic link (static -> /etc, declared "static/passwd") was read through
// the link by an os.DirFS: the artifact carried /etc/passwd. PackFiles
// refuses any declared path with a symbolic link among its parents, whatever
// the fs.FS, and names it.
func TestPackFilesBeyondSymlink(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0:outside-secret\n"), 0o644)
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "static")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "real", "sub", "f"), []byte("inside"), 0o644)
	os.Symlink("real", filepath.Join(dir, "alias"))
	for _, tc := range []struct{ declared, mention string }{
		{"static/passwd", `"static/passwd" lies beyond the symbolic link "static"`},
		{"static/", `"static" is a symbolic link`},
		{"alias/sub", `"alias/sub" lies beyond the symbolic link "alias"`},
	} {
		archive, err := registry.PackFiles(os.DirFS(dir), []string{tc.declared}, 0)
		if err == nil {
			t.Fatalf("PackFiles(%q) packed %d bytes", tc.declared, len(archive))
		}
		if !errors.Is(err, registry.ErrInvalidApp) || !strings.Contains(err.Error(), tc.mention) {
			t.Fatalf("PackFiles(%q): err = %v; want it to say %s", tc.declared, err, tc.mention)
		}
		if strings.Contains(err.Error(), "outside-secret") {
			t.Fatalf("the error shows the outside file: %v", err)
		}
	}
	// The same through an os.Root's FS.
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := registry.PackFiles(root.FS(), []string{"static/passwd"}, 0); err == nil {
		t.Fatal("PackFiles through os.Root packed a file beyond a link")
	}
	if _, err := registry.PackFiles(os.DirFS(dir), []string{"real/sub"}, 0); err != nil {
		t.Fatalf("a plain directory: %v", err)
	}
}
