package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"golang.org/x/crypto/bcrypt"
)

// startAuthServer runs the embedded registry with an htpasswd file holding
// user/pass.
func startAuthServer(t *testing.T, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir(), Htpasswd: htpasswd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

func TestCredentials(t *testing.T) {
	ctx := context.Background()
	const user, pass = "ferry", "s3cret-pw"
	addr := startAuthServer(t, user, pass)
	dockerConfig := func(u, p string) string {
		path := filepath.Join(t.TempDir(), "config.json")
		cfg := map[string]any{"auths": map[string]any{
			addr: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(u + ":" + p))},
		}}
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		opts    registry.Options
		wantErr error
	}{
		{"none", registry.Options{}, registry.ErrUnauthorized},
		{"explicit for host", registry.Options{Credentials: map[string]registry.Credential{addr: {Username: user, Password: pass}}}, nil},
		{"explicit for any host", registry.Options{Credentials: map[string]registry.Credential{"*": {Username: user, Password: pass}}}, nil},
		{"explicit for another host", registry.Options{Credentials: map[string]registry.Credential{"ghcr.io": {Username: user, Password: pass}}}, registry.ErrUnauthorized},
		{"wrong password", registry.Options{Credentials: map[string]registry.Credential{addr: {Username: user, Password: "nope"}}}, registry.ErrUnauthorized},
		{"docker config", registry.Options{DockerConfig: dockerConfig(user, pass)}, nil},
		{"docker config wrong", registry.Options{DockerConfig: dockerConfig(user, "nope")}, registry.ErrUnauthorized},
		{"explicit wins over docker config", registry.Options{DockerConfig: dockerConfig(user, "nope"),
			Credentials: map[string]registry.Credential{addr: {Username: user, Password: pass}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			tc.opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClient(t, tc.opts)
			app, modules := testApp("v1")
			res, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("push: err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if registry.Retryable(err) {
					t.Errorf("%v claims a retry may help", err)
				}
				if strings.Contains(err.Error(), pass) {
					t.Errorf("error reveals the password: %v", err)
				}
				return
			}
			if _, err := c.PullApp(ctx, res.Ref); err != nil {
				t.Fatal(err)
			}
			cr, err := c.CredentialFor(ctx, addr)
			if err != nil || cr.Username != user || cr.Password != pass {
				t.Errorf("CredentialFor(%s) = %v, %v", addr, cr, err)
			}
			if strings.Contains(logs.String(), pass) {
				t.Error("logs reveal the password")
			}
		})
	}
}

func TestEnvCredentialAndRedaction(t *testing.T) {
	env := map[string]string{registry.EnvUsername: "bob", registry.EnvPassword: "pw-123"}
	c, ok := registry.EnvCredential(func(k string) string { return env[k] })
	if !ok || c.Username != "bob" || c.Password != "pw-123" {
		t.Fatalf("EnvCredential = %v, %v", c, ok)
	}
	if _, ok := registry.EnvCredential(func(string) string { return "" }); ok {
		t.Error("EnvCredential with nothing set says ok")
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("login", "cred", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logs.String()} {
		if strings.Contains(s, "pw-123") {
			t.Errorf("secret shown: %s", s)
		}
		if !strings.Contains(s, "bob") {
			t.Errorf("username missing: %s", s)
		}
	}
}

func TestServe(t *testing.T) {
	t.Run("blocks until the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		dir := t.TempDir()
		go func() { done <- embedded.Serve(ctx, embedded.Options{Dir: dir}) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("storage survives a restart", func(t *testing.T) {
		ctx := context.Background()
		dir := t.TempDir()
		s1, err := embedded.NewServer(ctx, embedded.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		app, modules := testApp("v1")
		res, err := newClient(t, registry.Options{}).PushApp(ctx, s1.Addr()+"/apps/hello:v1", app, modules, registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s1.Close()
		if err := s1.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		s2, err := embedded.NewServer(ctx, embedded.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		pulled, err := newClient(t, registry.Options{}).PullApp(ctx, s2.Addr()+"/apps/hello:v1")
		if err != nil {
			t.Fatal(err)
		}
		checkPulled(t, pulled, res, modules)
	})
	t.Run("context cancel stops NewServer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := embedded.NewServer(ctx, embedded.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		c := newClient(t, registry.Options{})
		var lastErr error
		for range 100 {
			if _, lastErr = c.Resolve(context.Background(), s.Addr()+"/a/b:v1"); errors.Is(lastErr, registry.ErrUnavailable) {
				break
			}
		}
		if !errors.Is(lastErr, registry.ErrUnavailable) {
			t.Errorf("after cancel: %v, want ErrUnavailable", lastErr)
		}
	})
	bad := []struct {
		name string
		opts func(t *testing.T) embedded.Options
		want string
	}{
		{"no dir", func(*testing.T) embedded.Options { return embedded.Options{} }, "no storage directory"},
		{"dir is a file", func(t *testing.T) embedded.Options {
			f := filepath.Join(t.TempDir(), "file")
			os.WriteFile(f, nil, 0o644)
			return embedded.Options{Dir: f}
		}, "not a directory"},
		{"bad addr", func(t *testing.T) embedded.Options {
			return embedded.Options{Dir: t.TempDir(), Addr: "127.0.0.1:notaport"}
		}, "notaport"},
		{"missing htpasswd", func(t *testing.T) embedded.Options {
			return embedded.Options{Dir: t.TempDir(), Htpasswd: filepath.Join(t.TempDir(), "none")}
		}, "htpasswd"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s, err := embedded.NewServer(context.Background(), tc.opts(t))
			if err == nil {
				s.Close()
				t.Fatal("NewServer succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestServeLogs checks that Distribution's messages reach the slog logger
// of each running server, and request chatter only with Debug.
func TestServeLogs(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var quiet, loud strings.Builder
	lw := func(b *strings.Builder) *slog.Logger {
		return slog.New(slog.NewTextHandler(lockedWriter{&mu, b}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s1, err := embedded.NewServer(ctx, embedded.Options{Dir: t.TempDir(), Logger: lw(&quiet)})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := embedded.NewServer(ctx, embedded.Options{Dir: t.TempDir(), Logger: lw(&loud), Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	if _, err := c.PushApp(ctx, s2.Addr()+"/apps/hello", app, modules, registry.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(loud.String(), "response completed") {
		t.Errorf("debug server logged no requests:\n%s", loud.String())
	}
	if !strings.Contains(quiet.String(), "registry listening") || strings.Contains(quiet.String(), "response completed") {
		t.Errorf("quiet server log:\n%s", quiet.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
