package state_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/targets/host/state"
)

// TestOwnerPersists: a record's owner survives reopening the store; a Save
// without owner (a rollback) keeps it, one with another owner replaces it;
// a record written before owners loads with none; an unprintable or
// overlong owner is refused on Save and is corruption on Load.
func TestOwnerPersists(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := []byte("module one"), []byte("module two")
	v1, v2 := version("web", m1, nil), version("web", m2, nil)
	blobs := map[string][]byte{digest(m1): m1, digest(m2): m2}
	const a, b = "git:git.test/acme/a#local", "dir:/srv/spec-b#local"

	load := func(when string) state.Record {
		t.Helper()
		s2, err := state.Open(dir) // a restarted host
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s2.Load("web")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return rec
	}
	if err := s.Save(state.Record{Name: "web", Current: v1, Owner: a}, blobs); err != nil {
		t.Fatal(err)
	}
	if got := load("first save").Owner; got != a {
		t.Errorf("after the first save: owner %q, want %q", got, a)
	}
	// A rollback-style save names no owner: the recorded one stays.
	if err := s.Save(state.Record{Name: "web", Current: v2, Previous: &v1}, blobs); err != nil {
		t.Fatal(err)
	}
	if got := load("save without owner").Owner; got != a {
		t.Errorf("after a save without owner: owner %q, want %q kept", got, a)
	}
	if err := s.Save(state.Record{Name: "web", Current: v1, Previous: &v2, Owner: b}, nil); err != nil {
		t.Fatal(err)
	}
	if got := load("adopting save").Owner; got != b {
		t.Errorf("after an adopting save: owner %q, want %q", got, b)
	}
	// Deleting forgets the owner with the app.
	if err := s.Delete("web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(state.Record{Name: "web", Current: v1}, blobs); err != nil {
		t.Fatal(err)
	}
	if got := load("save after delete").Owner; got != "" {
		t.Errorf("a new app after a delete has owner %q, want none", got)
	}

	// A record written before owners: no "owner" field at all.
	path := filepath.Join(dir, "apps", "web", "app.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"owner"`) {
		t.Fatalf("a record without owner writes an owner field:\n%s", raw)
	}

	for _, bad := range []string{"line\nbreak", strings.Repeat("x", state.MaxOwnerLen+1), "caf\u00e9"} {
		err := s.Save(state.Record{Name: "web", Current: v1, Owner: bad}, blobs)
		if !errors.Is(err, state.ErrInvalid) {
			t.Errorf("Save with owner %.20q: %v, want ErrInvalid", bad, err)
		}
	}
	tampered := strings.Replace(string(raw), `"name": "web"`, `"name": "web", "owner": "a\u0007b"`, 1)
	if tampered == string(raw) {
		t.Fatalf("cannot find the name field in:\n%s", raw)
	}
	if err := os.WriteFile(path, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("web"); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("Load of a record with a control character in its owner: %v, want ErrCorrupt", err)
	}
}
