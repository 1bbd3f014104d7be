package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// nobody is the build user of the tests that switch users (they need root).
func nobody(t testing.TB) *User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching the build user needs root; this test runs as uid", os.Geteuid())
	}
	return &User{Name: "nobody", UID: 65534, GID: 65534}
}

// TestBuildCommandAsBuildUser: a command run as the build user sees only
// its allow-listed environment, cannot read the builder's environment
// (/proc/$PPID/environ) nor a 0600 file of the builder's user, works in a
// scratch copy (the checkout is not written), and still builds.
func TestBuildCommandAsBuildUser(t *testing.T) {
	u := nobody(t)
	t.Setenv("FERRY_PASSWORD", "builder-env-canary")
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("builder-file-canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	fixture := readFixture(t, "wagi.wasm")
	dir := t.TempDir() // 0700, owned by us: the build user cannot enter it
	writeFiles(t, dir, map[string]string{"in.wasm": string(fixture)})
	probe := "id -u; echo HOME=$HOME; cat /proc/$PPID/environ; cat '" + secret + "'; env; "
	b := newTestBuilder(t, Options{User: u})
	fail := Component{App: "app", Name: "probe", Kind: KindCommand, Dir: dir, Workdir: dir, Output: filepath.Join(dir, "out.wasm"),
		Command: probe + "exit 3"}
	_, err := b.Build(context.Background(), []Component{fail})
	var be *BuildError
	if !errors.As(err, &be) || !errors.Is(err, ErrBuildFailed) {
		t.Fatalf("err = %v, want a failed build", err)
	}
	if !strings.HasPrefix(be.Output, "65534\n") || !strings.Contains(be.Output, "HOME="+b.workDir) {
		t.Errorf("the command did not run as uid 65534 with HOME in the scratch directory:\n%s", be.Output)
	}
	for _, canary := range []string{"builder-env-canary", "builder-file-canary"} {
		if strings.Contains(be.Output, canary) {
			t.Errorf("the build command read %s:\n%s", canary, be.Output)
		}
	}
	ok := fail
	ok.Name, ok.Command = "ok", "cp in.wasm out.wasm && touch written-here"
	res := buildOK(t, b, ok)
	if string(res.Wasm) != string(fixture) {
		t.Errorf("built %d bytes, want the fixture's %d", len(res.Wasm), len(fixture))
	}
	for _, f := range []string{"out.wasm", "written-here"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the build wrote %s into the checkout (%v); it must work in a scratch copy", f, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(b.workDir, "run-*")); len(left) > 0 {
		t.Logf("scratch directories present (other builds may run): %v", left)
	}
}

// TestBuildOutputCannotLeaveScratch: a command whose output is a link to a
// file outside its scratch directory, or a hard link to a file the build
// user does not own, is refused; the builder never reads the outside file.
func TestBuildOutputCannotLeaveScratch(t *testing.T) {
	u := nobody(t)
	secret := filepath.Join(t.TempDir(), "secret.wasm")
	if err := os.WriteFile(secret, readFixture(t, "wagi.wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := os.MkdirTemp("", "ferry-pub-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	os.Chmod(pub, 0o755)
	foreign := filepath.Join(pub, "foreign.wasm") // readable, but not the build user's
	if err := os.WriteFile(foreign, readFixture(t, "wagi.wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, command string
		user          *User
	}{
		{"symlink/self", "ln -s '" + secret + "' out.wasm", nil},
		{"symlink/build-user", "ln -s '" + secret + "' out.wasm", u},
		{"hardlink/build-user", "ln '" + foreign + "' out.wasm", u},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := Component{App: "app", Name: "link", Kind: KindCommand, Dir: dir, Workdir: dir, Output: filepath.Join(dir, "out.wasm"), Command: tc.command}
			_, err := newTestBuilder(t, Options{User: tc.user}).Build(context.Background(), []Component{c})
			if !errors.Is(err, ErrOutsideRoot) && !errors.Is(err, ErrBuildFailed) {
				t.Fatalf("err = %v, want the output refused", err)
			}
			if err == nil {
				t.Fatal("a linked output was accepted")
			}
		})
	}
}

// TestGoBuildAsBuildUser: a Go component inside this repository builds as
// the build user from a scratch copy, with its own Go caches (which persist
// below WorkDir; the first such build on a machine compiles the standard
// library for wasip1 and takes minutes), and gives the same digest as a
// build as ourselves.
func TestGoBuildAsBuildUser(t *testing.T) {
	u := nobody(t)
	root := testenv.RepoRoot(t)
	c := goComponent("guest", filepath.Join(root, "builder", "testdata", "guest"), "")
	c.Dir = root
	as := buildOK(t, newTestBuilder(t, Options{User: u}), c)
	self := buildOK(t, newTestBuilder(t, Options{}), c)
	if as.Digest != self.Digest {
		t.Errorf("digest as the build user %s, as ourselves %s: builds must be reproducible", as.Digest, self.Digest)
	}
	if got, want := runWAGI(t, as.Wasm), "Content-Type: text/plain\n\nhello from ferry\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// TestParallelBuildsAsBuildUser: builds running at once as the build user
// with a fresh WorkDir all succeed (the first ones make WorkDir and the
// build user's directory together).
func TestParallelBuildsAsBuildUser(t *testing.T) {
	u := nobody(t)
	work, err := os.MkdirTemp("", "ferry-workdir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	os.Chmod(work, 0o755)
	fixture := readFixture(t, "wagi.wasm")
	var comps []Component
	for i := range 6 {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"in.wasm": string(fixture), "n": strings.Repeat("x", i)})
		comps = append(comps, Component{App: "app", Name: "c" + string(rune('a'+i)), Kind: KindCommand, Dir: dir, Workdir: dir,
			Output: filepath.Join(dir, "out.wasm"), Command: "test \"$(id -u)\" = 65534 && cp in.wasm out.wasm"})
	}
	res, err := newTestBuilder(t, Options{User: u, WorkDir: filepath.Join(work, "b"), Parallelism: 6}).Build(context.Background(), comps)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if string(r.Wasm) != string(fixture) {
			t.Errorf("%s: %d bytes, want the fixture", r.Component.ID(), len(r.Wasm))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(work, "b", "run-*")); len(left) != 0 {
		t.Errorf("scratch directories left behind: %v", left)
	}
}
