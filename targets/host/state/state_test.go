package state_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// version builds a version whose single component runs module.
func version(app string, module []byte, secrets map[string]string) state.Version {
	d := digest(module)
	return state.Version{
		Ref:        "127.0.0.1:5000/" + app + "@" + d, // not a real manifest digest; fine here
		Digest:     d,
		App:        deploy.App{Name: app, Components: []deploy.Component{{Name: "web", Digest: d, Routes: []string{"/..."}}}},
		Signatures: []signer.Signature{{Payload: []byte(`{"critical":{}}`), Base64: "c2ln"}},
		VerifiedBy: "key.pub",
		DeployedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Secrets:    secrets,
	}
}

func blobCount(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := []byte("module one"), []byte("module two")
	v1 := version("web", m1, map[string]string{"token": "t1"})
	v2 := version("web", m2, nil)
	rec := state.Record{Name: "web", Current: v2, Previous: &v1}
	if err := s.Save(rec, map[string][]byte{digest(m1): m1, digest(m2): m2}); err != nil {
		t.Fatal(err)
	}
	// A second store on the same directory (a restarted host) sees it all.
	s2, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Load("web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Fatalf("Load (-want +got):\n%s", diff)
	}
	mods, err := s2.Modules(&got.Current)
	if err != nil || string(mods[digest(m2)]) != "module two" {
		t.Fatalf("Modules: %v %v", mods, err)
	}
	names, _ := s2.Names()
	if fmt.Sprint(names) != "[web]" {
		t.Fatalf("Names = %v", names)
	}
	// Permissions: directory 0700, record and secrets 0600.
	for path, want := range map[string]os.FileMode{
		dir: 0o700, filepath.Join(dir, "apps", "web", "app.json"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), want, err)
		}
	}
	secrets, _ := filepath.Glob(filepath.Join(dir, "apps", "web", "secrets-*.json"))
	if len(secrets) != 1 {
		t.Fatalf("secrets files %v", secrets)
	}
	if fi, _ := os.Stat(secrets[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("secrets file mode %v", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "apps", "web", "app.json")); strings.Contains(string(b), "t1") {
		t.Error("secret value in app.json")
	}
	// No temporary files left behind.
	tmps, _ := filepath.Glob(filepath.Join(dir, "*", "*", ".tmp-*"))
	if len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestGarbageCollection: blobs and secrets files no version names any more
// are removed; shared blobs stay while anyone uses them.
func TestGarbageCollection(t *testing.T) {
	dir := t.TempDir()
	s, _ := state.Open(dir)
	m1, m2, m3 := []byte("one"), []byte("two"), []byte("three")
	mods := map[string][]byte{digest(m1): m1, digest(m2): m2, digest(m3): m3}
	v1, v2, v3 := version("a", m1, map[string]string{"k": "1"}), version("a", m2, map[string]string{"k": "2"}), version("a", m3, nil)
	steps := []struct {
		name    string
		do      func() error
		blobs   int
		secrets int
	}{
		{"a=v1", func() error { return s.Save(state.Record{Name: "a", Current: v1}, mods) }, 1, 1},
		{"b=v1 shares the blob", func() error { return s.Save(state.Record{Name: "b", Current: version("b", m1, nil)}, mods) }, 1, 1},
		{"a=v2 prev v1", func() error { return s.Save(state.Record{Name: "a", Current: v2, Previous: &v1}, mods) }, 2, 2},
		{"a=v3 prev v2", func() error { return s.Save(state.Record{Name: "a", Current: v3, Previous: &v2}, mods) }, 3, 1},
		{"delete b", func() error { return s.Delete("b") }, 2, 1},
		{"delete a", func() error { return s.Delete("a") }, 0, 0},
		{"delete absent", func() error { return s.Delete("a") }, 0, 0},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		secrets, _ := filepath.Glob(filepath.Join(dir, "apps", "*", "secrets-*.json"))
		if got := blobCount(t, dir); got != st.blobs || len(secrets) != st.secrets {
			t.Fatalf("after %s: %d blobs, %d secrets files; want %d, %d", st.name, got, len(secrets), st.blobs, st.secrets)
		}
	}
}

func TestCorruptEntries(t *testing.T) {
	m := []byte("module")
	tests := []struct {
		name   string
		damage func(dir string)
		load   error // from Load
		blob   error // from Modules
	}{
		{"intact", func(string) {}, nil, nil},
		{"tampered blob", func(dir string) {
			os.WriteFile(filepath.Join(dir, "blobs", "sha256", digest(m)[7:]), []byte("evil"), 0o644)
		}, nil, state.ErrCorrupt},
		{"missing blob", func(dir string) {
			os.Remove(filepath.Join(dir, "blobs", "sha256", digest(m)[7:]))
		}, nil, state.ErrNotFound},
		{"truncated record", func(dir string) {
			os.WriteFile(filepath.Join(dir, "apps", "a", "app.json"), []byte(`{"format":1,"na`), 0o600)
		}, state.ErrCorrupt, nil},
		{"record of another app", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "apps", "a", "app.json"))
			os.WriteFile(filepath.Join(dir, "apps", "a", "app.json"), []byte(strings.Replace(string(b), `"name": "a"`, `"name": "b"`, 1)), 0o600)
		}, state.ErrCorrupt, nil},
		{"path in digest", func(dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "apps", "a", "app.json"))
			os.WriteFile(filepath.Join(dir, "apps", "a", "app.json"), []byte(strings.ReplaceAll(string(b), digest(m), "sha256:../../x")), 0o600)
		}, state.ErrCorrupt, nil},
		{"unreadable secrets", func(dir string) {
			f, _ := filepath.Glob(filepath.Join(dir, "apps", "a", "secrets-*.json"))
			os.WriteFile(f[0], []byte("{not json"), 0o600)
		}, state.ErrCorrupt, nil},
		{"no record", func(dir string) { os.Remove(filepath.Join(dir, "apps", "a", "app.json")) }, state.ErrNotFound, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := state.Open(dir)
			if err := s.Save(state.Record{Name: "a", Current: version("a", m, map[string]string{"k": "secret-v"})}, map[string][]byte{digest(m): m}); err != nil {
				t.Fatal(err)
			}
			tc.damage(dir)
			s, err := state.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s.Load("a")
			if !errors.Is(err, tc.load) || (err == nil) != (tc.load == nil) {
				t.Fatalf("Load: %v, want %v", err, tc.load)
			}
			if err != nil {
				if strings.Contains(err.Error(), "secret-v") {
					t.Fatal("secret in error")
				}
				return
			}
			_, err = s.Modules(&rec.Current)
			if !errors.Is(err, tc.blob) || (err == nil) != (tc.blob == nil) {
				t.Fatalf("Modules: %v, want %v", err, tc.blob)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	s, _ := state.Open(t.TempDir())
	m := []byte("m")
	tests := []struct {
		name string
		rec  state.Record
		mods map[string][]byte
	}{
		{"dot name", state.Record{Name: "..", Current: version("..", m, nil)}, map[string][]byte{digest(m): m}},
		{"slash name", state.Record{Name: "a/b", Current: version("a", m, nil)}, map[string][]byte{digest(m): m}},
		{"module missing", state.Record{Name: "a", Current: version("a", m, nil)}, nil},
		{"module bytes wrong", state.Record{Name: "a", Current: version("a", m, nil)}, map[string][]byte{digest(m): []byte("x")}},
		{"bad digest", state.Record{Name: "a", Current: state.Version{App: deploy.App{Components: []deploy.Component{{Digest: "md5:00"}}}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Save(tc.rec, tc.mods); !errors.Is(err, state.ErrInvalid) {
				t.Fatalf("Save: %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := s.Load("../etc"); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("Load(../etc): %v", err)
	}
}

// TestConcurrentSaves hammers the store from many goroutines on a few
// apps sharing blobs; every app ends readable with its modules present.
func TestConcurrentSaves(t *testing.T) {
	dir := t.TempDir()
	s, _ := state.Open(dir)
	mods := map[string][]byte{}
	var ms [][]byte
	for i := range 4 {
		b := []byte(fmt.Sprintf("module %d", i))
		ms = append(ms, b)
		mods[digest(b)] = b
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			app := fmt.Sprintf("app%d", g%3)
			for i := range 20 {
				cur := version(app, ms[(g+i)%4], map[string]string{"i": fmt.Sprint(i)})
				prev := version(app, ms[(g+i+1)%4], nil)
				var err error
				if i%7 == 6 {
					err = s.Delete(app)
				} else {
					err = s.Save(state.Record{Name: app, Current: cur, Previous: &prev}, mods)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	names, _ := s.Names()
	for _, n := range names {
		rec, err := s.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []*state.Version{&rec.Current, rec.Previous} {
			if _, err := s.Modules(v); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
	}
}

// TestRolledBackSurvivesReopen: the record of a rollback the host made by
// itself is kept beside the versions and read back by a restarted host; a
// later save without it clears it.
func TestRolledBackSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := []byte("good module"), []byte("flaky module")
	good, bad := version("web", m1, nil), version("web", m2, nil)
	rb := &state.Rollback{From: bad.Digest, FromRef: bad.Ref, To: good.Digest,
		Reason: "component web unhealthy 1s after its deploy", At: time.Date(2025, 1, 2, 3, 5, 0, 0, time.UTC)}
	rec := state.Record{Name: "web", Current: good, Previous: &bad, RolledBack: rb}
	if err := s.Save(rec, map[string][]byte{digest(m1): m1, digest(m2): m2}); err != nil {
		t.Fatal(err)
	}
	s2, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Load("web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Fatalf("Load after reopen (-want +got):\n%s", diff)
	}
	rec.RolledBack = nil
	if err := s2.Save(rec, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Load("web"); err != nil || got.RolledBack != nil {
		t.Fatalf("after a save without it: RolledBack %+v, %v", got.RolledBack, err)
	}
}
