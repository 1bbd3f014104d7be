package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// authRecorder is a loopback "registry" that answers every request 401
// with a Basic challenge (so that a client holding credentials sends them)
// and records every Authorization header it receives.
type authRecorder struct {
	mu    gosync.Mutex
	auths []string
	n     int
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.n++
	if h := r.Header.Get("Authorization"); h != "" {
		a.auths = append(a.auths, h)
	}
	a.mu.Unlock()
	w.Header().Set("WWW-Authenticate", `Basic realm="b"`)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
}

func (a *authRecorder) seen() (requests int, auths []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n, append([]string(nil), a.auths...)
}

// TestRegistryCredentialsStayWithTheirRegistry: a host given registry
// credentials for registry A (FERRY_REGISTRY_USERNAME/PASSWORD with
// FERRY_REGISTRY_HOST=A) pulls and verifies from A with them, and a PUT
// naming registry B — with verification on (the signature lookup) and off
// (the pull) — sends B no Authorization header at all. Without
// FERRY_REGISTRY_HOST the host refuses to start rather than send the
// credentials to every registry.
func TestRegistryCredentialsStayWithTheirRegistry(t *testing.T) {
	ctx := context.Background()
	const user, pass = "ferry-a", "pw-of-registry-a-0123"
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	regA, err := embedded.NewServer(ctx, embedded.Options{Dir: t.TempDir(), Htpasswd: htpasswd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { regA.Close() })
	credA := registry.Credential{Username: user, Password: pass}
	pusher, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true,
		Credentials: map[string]registry.Credential{regA.Addr(): credA}})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	app := deploy.App{Name: "cred-app", Hosts: []string{"cred-app.localhost"}, Components: []deploy.Component{{
		Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
		Limits: deploy.Limits{MemoryBytes: 1 << 20, Timeout: deploy.Duration(2 * time.Second)},
	}}}
	res, err := pusher.PushApp(ctx, regA.Addr()+"/apps/cred-app", app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := signingKey(t)
	signOpts := signer.SignOptions{Registry: signer.RegistryOptions{Credentials: func(context.Context, string) (registry.Credential, error) {
		return registry.Credential{Username: user, Password: pass}, nil
	}}}
	if _, err := signer.Sign(ctx, res.Ref, priv, signOpts); err != nil {
		t.Fatal(err)
	}

	rec := &authRecorder{}
	regB := httptest.NewServer(rec)
	t.Cleanup(regB.Close)
	refB := strings.TrimPrefix(regB.URL, "http://") + "/apps/cred-app@" + string(res.Digest)
	env := map[string]string{"TOK": testToken, registry.EnvUsername: user, registry.EnvPassword: pass, registry.EnvHost: regA.Addr()}

	for _, extra := range [][]string{{"--trust-key", trustKeyFile(t)}, {"--insecure-skip-verify"}} {
		args := append([]string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--state-dir", t.TempDir(), "--token-env", "TOK"}, extra...)
		appsURL, ctlURL, stop := runInProcess(t, args, env)
		c, _ := driver.NewClient(ctlURL, testToken, driver.ClientOptions{})
		before, _ := rec.seen()
		if _, err := c.Put(ctx, targets.DesiredApp{Name: "cred-app", Ref: refB, Digest: string(res.Digest)}); err == nil {
			t.Fatalf("%v: PUT naming registry B succeeded", extra)
		}
		n, auths := rec.seen()
		if n == before {
			t.Fatalf("%v: registry B was never asked; the test proves nothing", extra)
		}
		if len(auths) > 0 {
			t.Fatalf("%v: registry B received Authorization headers %q: the credentials of registry A went to another registry", extra, auths)
		}
		// The credentials still work where they belong.
		if _, err := c.Put(ctx, targets.DesiredApp{Name: "cred-app", Ref: res.Ref, Digest: string(res.Digest)}); err != nil {
			t.Fatalf("%v: PUT from registry A with its credentials: %v", extra, err)
		}
		wantHello(t, appsURL, "cred-app.localhost")
		if code := stop(); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}

	// Credentials without a registry host are refused at start.
	stderr := &testenv.Buffer{}
	noHost := map[string]string{"TOK": testToken, registry.EnvUsername: user, registry.EnvPassword: pass}
	code := run(ctx, []string{"--state-dir", t.TempDir(), "--trust-key", trustKeyFile(t), "--token-env", "TOK",
		"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"}, func(k string) string { return noHost[k] }, &testenv.Buffer{}, stderr)
	if code != 2 || !strings.Contains(stderr.String(), registry.EnvHost) {
		t.Fatalf("credentials without %s: exit %d, stderr %s", registry.EnvHost, code, stderr)
	}
	if strings.Contains(stderr.String(), pass) {
		t.Fatal("the password was printed")
	}
}
