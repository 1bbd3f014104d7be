package gitsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/gittest"
)

// TestGitSourceHTTPSWithCA: `git http-backend` served over TLS on loopback
// with a certificate of a test CA. The git source fetches through it when
// given the CA (GitAuth.CAFile), also with basic auth, and refuses the
// server without the CA, or with another CA, with an error naming the
// certificate's signer as the problem and which CAs it tried.
func TestGitSourceHTTPSWithCA(t *testing.T) {
	srv := gittest.NewServer(t, gittest.Options{TLS: true, Username: "deploy", Password: "tls-pass"})
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("server URL %s is not https on loopback", srv.URL())
	}
	w := gittest.CloneURL(t, strings.Replace(srv.URL(), "https://", "https://deploy:tls-pass@", 1), srv.Home())
	head := w.CommitPush("spec", map[string]string{"ferry.hcl": "# over https\n"})
	ctx := context.Background()
	auth := GitAuth{Username: "deploy", Password: "tls-pass"}

	t.Run("trusted CA", func(t *testing.T) {
		a := auth
		a.CAFile = srv.CAFile()
		g := &Source{URL: srv.URL(), Branch: "main", Dir: t.TempDir(), Auth: a}
		got, err := g.Fetch(ctx)
		if err != nil || got != head {
			t.Fatalf("fetch over https with the CA: %s, %v; want %s", got, err, head)
		}
		dir, err := g.Checkout(got)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "ferry.hcl")); err != nil || string(b) != "# over https\n" {
			t.Fatalf("checked-out ferry.hcl: %q %v", b, err)
		}
	})

	other := gittest.NewCA(t, "another CA").WriteFile(t)
	for _, tc := range []struct {
		name, caFile, want string
	}{
		{"no CA", "", "the server's TLS certificate is not signed by any of the system's certificate authorities (set FERRY_GIT_CA_FILE or --git-ca-file"},
		{"another CA", other, "the server's TLS certificate is not signed by the certificate authorities in " + other + " or the system's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := auth
			a.CAFile = tc.caFile
			g := &Source{URL: srv.URL(), Branch: "main", Dir: t.TempDir(), Auth: a}
			got, err := g.Fetch(ctx)
			if err == nil {
				t.Fatalf("fetch from a server signed by an unknown CA succeeded (%s)", got)
			}
			if !errors.Is(err, ErrGitUnreachable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") {
				t.Fatalf("error %q; want ErrGitUnreachable with %q and the x509 reason", err, tc.want)
			}
			if strings.Contains(err.Error(), "tls-pass") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}

	t.Run("bad CA file", func(t *testing.T) {
		notPEM := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{notPEM, filepath.Join(t.TempDir(), "missing.pem")} {
			a := auth
			a.CAFile = f
			g := &Source{URL: srv.URL(), Branch: "main", Dir: t.TempDir(), Auth: a}
			if _, err := g.Fetch(ctx); !errors.Is(err, ErrGitAuth) || !strings.Contains(err.Error(), "git CA file") {
				t.Errorf("CA file %s: %v; want ErrGitAuth naming the git CA file", f, err)
			}
		}
	})

	if a, err := GitAuthFromEnv(func(k string) string {
		return map[string]string{"FERRY_GIT_CA_FILE": "/etc/ferry/git-ca.pem"}[k]
	}); err != nil || a.CAFile != "/etc/ferry/git-ca.pem" || !strings.Contains(a.String(), "ca-file=/etc/ferry/git-ca.pem") {
		t.Errorf("GitAuthFromEnv with FERRY_GIT_CA_FILE: %+v (%s), %v", a, a, err)
	}
}
