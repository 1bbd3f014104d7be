package state_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/targets/host/state"
)

// TestFilesArchives: a version's files archives are blobs like its modules:
// given to Save, read back verified by Files, kept while a version names
// them (also across a reopen), removed when none does.
func TestFilesArchives(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m1, f1, f2 := []byte("module"), []byte("files one"), []byte("files two")
	v1 := version("a", m1, nil)
	v1.Files = map[string]string{"web": digest(f1)}
	v2 := version("a", m1, nil)
	v2.Digest = digest([]byte("manifest two"))
	v2.Files = map[string]string{"web": digest(f2)}

	if diff := cmp.Diff([]string{digest(m1), digest(f1)}, v1.Blobs()); diff != "" {
		t.Errorf("Blobs (-want +got):\n%s", diff)
	}
	// A files archive that is neither given nor stored is refused.
	if err := s.Save(state.Record{Name: "a", Current: v1}, map[string][]byte{digest(m1): m1}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("save without the files archive: %v, want ErrInvalid", err)
	}
	if err := s.Save(state.Record{Name: "a", Current: v1}, map[string][]byte{digest(m1): m1, digest(f1): f1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(state.Record{Name: "a", Current: v2, Previous: &v1}, map[string][]byte{digest(f2): f2}); err != nil {
		t.Fatal(err)
	}
	if n := blobCount(t, dir); n != 3 {
		t.Fatalf("%d blobs, want 3 (module, two archives)", n)
	}

	s2, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s2.Load("a")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    *state.Version
		want []byte
	}{{&rec.Current, f2}, {rec.Previous, f1}} {
		files, err := s2.Files(tc.v)
		if err != nil || string(files["web"]) != string(tc.want) {
			t.Fatalf("Files = %q, %v; want %q", files, err, tc.want)
		}
	}
	// Dropping the previous version removes its archive only.
	if err := s2.Save(state.Record{Name: "a", Current: rec.Current}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest(f1), "sha256:"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("archive of the dropped version still there: %v", err)
	}
	// A damaged archive is reported as corrupt, naming the component.
	p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest(f2), "sha256:"))
	if err := os.WriteFile(p, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Files(&rec.Current); !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), `component "web"`) {
		t.Fatalf("Files of a damaged archive: %v, want ErrCorrupt naming the component", err)
	}
	if err := s2.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if n := blobCount(t, dir); n != 0 {
		t.Errorf("%d blobs left after delete", n)
	}
}
