package gitsource

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/gittest"
)

func TestGitSourceAuthAndURLs(t *testing.T) {
	srv := gittest.NewServer(t, gittest.Options{Username: "ferry", Password: "s3cret-pw"})
	w := gittest.CloneURL(t, strings.Replace(srv.URL(), "http://", "http://ferry:s3cret-pw@", 1), srv.Home())
	sha := w.CommitPush("x", map[string]string{"specs/ferry.hcl": "# hi\n", "specs/run.sh": "#!/bin/sh\n"})
	w.Git("update-index", "--chmod=+x", "specs/run.sh")
	sha2 := w.Commit("exec")
	w.Push()

	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("s3cret-pw\n"), 0o600)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	// OpenSSH's sshd, with a second key it does not know and an empty
	// known_hosts file.
	ssh := srv.ServeSSH(t)
	otherKey := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	noHosts := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(noHosts, nil, 0o600)

	tests := []struct {
		name    string
		url     string
		env     map[string]string
		wantErr string
	}{
		{"basic auth from env", srv.URL(), map[string]string{"FERRY_GIT_USERNAME": "ferry", "FERRY_GIT_PASSWORD": "s3cret-pw"}, ""},
		{"token from file", srv.URL(), map[string]string{"FERRY_GIT_USERNAME": "ferry", "FERRY_GIT_TOKEN_FILE": tokenFile}, ""},
		{"wrong password", srv.URL(), map[string]string{"FERRY_GIT_USERNAME": "ferry", "FERRY_GIT_PASSWORD": "nope-nope"}, "authentication"},
		{"anonymous", srv.URL(), nil, "authentication"},
		{"local path", srv.Path(), nil, ""},
		{"git daemon", srv.ServeDaemon(t), nil, ""},
		{"file URL", "file://" + srv.Path(), nil, ""},
		{"no such branch", srv.Path(), nil, "no branch"},
		{"ssh key", ssh.URL, map[string]string{"FERRY_GIT_SSH_KEY": ssh.KeyFile, "FERRY_GIT_KNOWN_HOSTS": ssh.KnownHostsFile}, ""},
		{"ssh unknown key", ssh.URL, map[string]string{"FERRY_GIT_SSH_KEY": otherKey, "FERRY_GIT_KNOWN_HOSTS": ssh.KnownHostsFile}, "unable to authenticate"},
		{"ssh unknown host", ssh.URL, map[string]string{"FERRY_GIT_SSH_KEY": ssh.KeyFile, "FERRY_GIT_KNOWN_HOSTS": noHosts}, "key is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth, err := GitAuthFromEnv(env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			branch := "main"
			if tt.name == "no such branch" {
				branch = "dev"
			}
			g := &Source{URL: tt.url, Branch: branch, Dir: t.TempDir(), Auth: auth}
			got, err := g.Fetch(context.Background())
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrGitUnreachable) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for _, secret := range []string{"s3cret-pw", "nope-nope"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error leaks a secret: %v", err)
					}
				}
				return
			}
			if err != nil || got != sha2 {
				t.Fatalf("fetch = %q, %v; want %s", got, err, sha2)
			}
			dir, err := g.Checkout(got)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "specs", "ferry.hcl")); err != nil || string(b) != "# hi\n" {
				t.Fatalf("checkout: %q %v", b, err)
			}
			if fi, err := os.Stat(filepath.Join(dir, "specs", "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
				t.Fatalf("executable bit lost: %v %v", fi.Mode(), err)
			}
			// Fetch again: up to date; checkout again: same directory.
			if again, err := g.Fetch(context.Background()); err != nil || again != got {
				t.Fatalf("second fetch %q %v", again, err)
			}
			// An older commit is still checkable out.
			if _, err := g.Checkout(sha); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGitAuthRedaction(t *testing.T) {
	a := GitAuth{Username: "u", Password: "pw-secret", Token: "tok-secret", SSHKeyFile: "/k"}
	if s := a.String(); strings.Contains(s, "secret") {
		t.Fatalf("String leaks: %s", s)
	}
	if got := RedactURL("https://u:pw-secret@example.com/x.git"); strings.Contains(got, "pw-secret") || !strings.Contains(got, "u:xxxxx@example.com") {
		t.Fatalf("redactURL = %s", got)
	}
	if _, err := GitAuthFromEnv(func(k string) string {
		if k == "FERRY_GIT_TOKEN_FILE" {
			return "/nonexistent/token"
		}
		return ""
	}); !errors.Is(err, ErrGitAuth) {
		t.Fatalf("missing token file: %v", err)
	}
}

func TestGitSourceReopensCorruptMirror(t *testing.T) {
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	sha := w.CommitPush("x", map[string]string{"f": "1"})
	dir := t.TempDir()
	g := &Source{URL: srv.URL(), Branch: "main", Dir: dir}
	if _, err := g.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A crash left the mirror unreadable: the next process starts over.
	os.RemoveAll(filepath.Join(dir, "repo", "HEAD"))
	os.WriteFile(filepath.Join(dir, "repo", "config"), []byte("[[[garbage"), 0o644)
	g2 := &Source{URL: srv.URL(), Branch: "main", Dir: dir}
	if got, err := g2.Fetch(context.Background()); err != nil || got != sha {
		t.Fatalf("fetch after corruption = %q, %v", got, err)
	}
}

// TestGitSourceRecoversTornRef is the regression test for an agent that
// never recovered from a SIGKILL (the chaos suite's seed
// 1796411157723766879): go-git truncates a ref file and then writes it in
// place, so a kill between the two leaves it empty, and every later fetch
// failed with "ref file is empty". A process that finds a ref it cannot
// read, or one naming an object the mirror lacks, starts the mirror over.
func TestGitSourceRecoversTornRef(t *testing.T) {
	ref := filepath.Join("repo", "refs", "remotes", "origin", "main")
	tests := []struct {
		name  string
		write string
	}{
		{"empty ref file", ""},
		{"ref cut short", "3f2a9c"},
		{"ref to a missing object", strings.Repeat("ab", 20) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := gittest.NewServer(t, gittest.Options{})
			w := srv.Clone(t)
			w.CommitPush("one", map[string]string{"f": "1"})
			dir := t.TempDir()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			g := &Source{URL: srv.URL(), Branch: "main", Dir: dir, Log: log}
			if _, err := g.Fetch(context.Background()); err != nil {
				t.Fatal(err)
			}
			if logs.Len() != 0 {
				t.Fatalf("a first fetch into an empty directory logged: %s", logs.String())
			}
			sha := w.CommitPush("two", map[string]string{"f": "2"})
			if err := os.WriteFile(filepath.Join(dir, ref), []byte(tt.write), 0o644); err != nil {
				t.Fatal(err)
			}
			g2 := &Source{URL: srv.URL(), Branch: "main", Dir: dir, Log: log}
			got, err := g2.Fetch(context.Background())
			if err != nil || got != sha {
				t.Fatalf("fetch after a torn ref = %q, %v; want %s", got, err, sha)
			}
			if !strings.Contains(logs.String(), "starting it over") {
				t.Fatalf("starting the mirror over logged no warning: %q", logs.String())
			}
			if _, err := g2.Checkout(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}
