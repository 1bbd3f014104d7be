package gitsource

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/gittest"
)

// plumb runs the real git CLI in dir with stdin and returns its trimmed
// output.
func plumb(t *testing.T, home, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gittest.Env(home)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("git %v: %v\n%s", args, err, msg)
	}
	return strings.TrimSpace(string(out))
}

// hostileCommit writes a commit whose tree is made with git plumbing (a
// regular `git add` cannot make these trees) straight into the served bare
// repository and points main at it. entries are mktree lines for the root
// tree: "<mode> <type> <sha>\t<name>".
func hostileCommit(t *testing.T, srv *gittest.Server, entries []string) string {
	t.Helper()
	tree := plumb(t, srv.Home(), srv.Path(), strings.Join(entries, "\n")+"\n", "mktree", "--missing")
	commit := plumb(t, srv.Home(), srv.Path(), "", "commit-tree", tree, "-m", "hostile")
	plumb(t, srv.Home(), srv.Path(), "", "update-ref", "refs/heads/main", commit)
	return commit
}

func blob(t *testing.T, srv *gittest.Server, content string) string {
	return plumb(t, srv.Home(), srv.Path(), content, "hash-object", "-w", "--stdin")
}

// TestGitSourceHostileTrees: a pushed tree can hold a symbolic link and,
// under the same name, a directory (or a path below the link). Writing it
// naively writes through the link, anywhere the agent can write. The
// checkout must fail naming the path, and write nothing outside.
func TestGitSourceHostileTrees(t *testing.T) {
	var outside string // where an attacker wants to write; one per case
	tests := []struct {
		name     string
		entries  func(srv *gittest.Server) []string
		wantPath string
	}{
		{"symlink and directory of the same name", func(srv *gittest.Server) []string {
			link := blob(t, srv, outside)
			f := blob(t, srv, "pwned\n")
			sub := plumb(t, srv.Home(), srv.Path(), "100644 blob "+f+"\tpwned.txt\n", "mktree")
			return []string{"120000 blob " + link + "\tx", "040000 tree " + sub + "\tx"}
		}, "x/pwned.txt"},
		{"relative symlink climbing out, then a directory", func(srv *gittest.Server) []string {
			// The checkout lives in <data>/worktrees/<tmp>/; a relative
			// link to the outside directory.
			link := blob(t, srv, strings.Repeat("../", 40)+strings.TrimPrefix(outside, "/"))
			f := blob(t, srv, "pwned\n")
			sub := plumb(t, srv.Home(), srv.Path(), "100644 blob "+f+"\tpwned.txt\n", "mktree")
			return []string{"120000 blob " + link + "\tup", "040000 tree " + sub + "\tup"}
		}, "up/pwned.txt"},
		{"symlink to a directory inside, then a file beyond it", func(srv *gittest.Server) []string {
			link := blob(t, srv, "a-real")
			f := blob(t, srv, "x\n")
			sub := plumb(t, srv.Home(), srv.Path(), "100644 blob "+f+"\tf\n", "mktree")
			return []string{"040000 tree " + sub + "\ta-real", "120000 blob " + link + "\tlnk", "040000 tree " + sub + "\tlnk"}
		}, "lnk/f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside = t.TempDir()
			srv := gittest.NewServer(t, gittest.Options{})
			sha := hostileCommit(t, srv, tt.entries(srv))
			data := t.TempDir()
			g := &Source{URL: srv.URL(), Branch: "main", Dir: data}
			got, err := g.Fetch(context.Background())
			if err != nil || got != sha {
				t.Fatalf("fetch = %q, %v; want %s", got, err, sha)
			}
			dir, err := g.Checkout(got)
			if ents, _ := os.ReadDir(outside); len(ents) > 0 {
				t.Errorf("the checkout wrote outside its directory: %v", ents[0].Name())
			}
			if err == nil {
				t.Fatalf("checkout of a hostile tree succeeded (%s)", dir)
			}
			if !strings.Contains(err.Error(), tt.wantPath) || !strings.Contains(err.Error(), "symbolic link") {
				t.Fatalf("error does not name %q beyond a symbolic link: %v", tt.wantPath, err)
			}
			if ents, _ := os.ReadDir(filepath.Join(data, "worktrees")); len(ents) > 0 {
				t.Fatalf("a failed checkout left %s behind", ents[0].Name())
			}
		})
	}
}
