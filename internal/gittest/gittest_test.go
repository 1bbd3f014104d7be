package gittest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerCloneCommitPush(t *testing.T) {
	s := NewServer(t, Options{})
	w := s.Clone(t)
	if w.Branch != "main" {
		t.Fatalf("branch = %q, want main", w.Branch)
	}
	sha := w.CommitPush("first", map[string]string{"a/b.txt": "hello\n"})
	if got := s.Head("main"); got != sha {
		t.Fatalf("server head = %q, want %q", got, sha)
	}
	// A second clone sees the file.
	w2 := s.Clone(t)
	b, err := os.ReadFile(filepath.Join(w2.Dir, "a", "b.txt"))
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("second clone: %q, %v", b, err)
	}
	w2.Remove("a")
	sha2 := w2.Commit("remove")
	w2.Push()
	if s.Head("main") != sha2 || sha2 == sha {
		t.Fatalf("head after remove = %q", s.Head("main"))
	}
	if s.Requests() == 0 {
		t.Fatal("no HTTP requests counted")
	}
}

func TestServerAuth(t *testing.T) {
	s := NewServer(t, Options{Username: "u", Password: "p4ss"})
	w := CloneURL(t, strings.Replace(s.URL(), "http://", "http://u:p4ss@", 1), s.Home())
	w.CommitPush("x", map[string]string{"f": "1"})
	if _, err := run(s.Home(), t.TempDir(), "ls-remote", s.URL()); err == nil {
		t.Fatal("ls-remote without credentials succeeded")
	}
	if _, err := run(s.Home(), t.TempDir(), "ls-remote", strings.Replace(s.URL(), "http://", "http://u:wrong@", 1)); err == nil {
		t.Fatal("ls-remote with a wrong password succeeded")
	}
}

func TestServerDownUp(t *testing.T) {
	s := NewServer(t, Options{})
	w := s.Clone(t)
	w.CommitPush("x", map[string]string{"f": "1"})
	s.Down()
	if _, err := run(s.Home(), t.TempDir(), "ls-remote", s.URL()); err == nil {
		t.Fatal("ls-remote succeeded while the server is down")
	}
	w.Write("f", "2")
	w.Commit("y")
	if err := w.TryPush(); err == nil {
		t.Fatal("push succeeded while the server is down")
	}
	s.Up()
	w.Push()
	if out, err := run(s.Home(), t.TempDir(), "ls-remote", s.URL()); err != nil || !strings.Contains(out, "refs/heads/main") {
		t.Fatalf("ls-remote after Up: %q, %v", out, err)
	}
}

func TestServeDaemon(t *testing.T) {
	s := NewServer(t, Options{})
	url := s.ServeDaemon(t)
	w := CloneURL(t, url, s.Home())
	sha := w.CommitPush("over git://", map[string]string{"f": "1"})
	if s.Head("main") != sha {
		t.Fatalf("head %q, want %q", s.Head("main"), sha)
	}
	if out, err := run(s.Home(), t.TempDir(), "ls-remote", url); err != nil || !strings.Contains(out, sha) {
		t.Fatalf("ls-remote: %q %v", out, err)
	}
}

func TestServeSSH(t *testing.T) {
	s := NewServer(t, Options{})
	ssh := s.ServeSSH(t)
	// The git CLI over OpenSSH, with only the test's key and known host.
	sshCmd := "ssh -i " + ssh.KeyFile + " -o IdentitiesOnly=yes -o UserKnownHostsFile=" + ssh.KnownHostsFile + " -o StrictHostKeyChecking=yes -o BatchMode=yes"
	Git(t, s.Home(), t.TempDir(), "config", "--global", "core.sshCommand", sshCmd)
	w := CloneURL(t, ssh.URL, s.Home())
	sha := w.CommitPush("over ssh", map[string]string{"f": "1"})
	if s.Head("main") != sha {
		t.Fatalf("head %q, want %q", s.Head("main"), sha)
	}
	// An unknown host key is refused.
	Git(t, s.Home(), t.TempDir(), "config", "--global", "core.sshCommand",
		"ssh -i "+ssh.KeyFile+" -o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes")
	if out, err := run(s.Home(), t.TempDir(), "ls-remote", ssh.URL); err == nil {
		t.Fatalf("ls-remote with an unknown host key succeeded: %q", out)
	}
}
