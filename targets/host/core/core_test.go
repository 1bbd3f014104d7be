package core_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// coreWorld is one host core under test, with no HTTP API in front: a
// real registry, real signatures, the real runtime and state directory.
type coreWorld struct {
	t        *testing.T
	regAddr  string
	pusher   *registry.Client
	key      *signer.PrivateKey
	policy   signer.Policy
	stateDir string
	rt       *host.Runtime
	core     *core.Core
	apps     *httptest.Server
}

func newCoreWorld(t *testing.T) *coreWorld {
	t.Helper()
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	pusher, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	w := &coreWorld{t: t, regAddr: reg.Addr(), pusher: pusher, key: priv,
		policy: signer.Policy{Keys: []signer.Key{{Name: "trusted", Public: pub}}}, stateDir: t.TempDir()}
	w.start(true)
	t.Cleanup(w.stop)
	return w
}

// start brings up a runtime and a core on w.stateDir (with a registry
// client when withRegistry) and restores what the store holds.
func (w *coreWorld) start(withRegistry bool) core.RestoreReport {
	t := w.t
	t.Helper()
	rt, err := host.New(host.Options{StateDir: w.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	opts := core.Options{Runtime: rt, Store: st, Policy: w.policy, SecretHashKey: api.SecretHashKey("tok")}
	if withRegistry {
		if opts.Registry, err = registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.rt, w.core = rt, c
	rep := c.Restore(context.Background())
	w.apps = httptest.NewServer(rt)
	return rep
}

func (w *coreWorld) stop() {
	if w.rt == nil {
		return
	}
	w.apps.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.rt.Close(ctx); err != nil {
		w.t.Errorf("closing runtime: %v", err)
	}
	w.rt = nil
}

// push stores a one-component hello app answering greeting (5 letters)
// and returns REPO@DIGEST; signed says whether it is signed with the
// trusted key.
func (w *coreWorld) push(greeting string, signed bool) string {
	t := w.t
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	wasm := bytes.Replace(b, []byte("Hello from WAT"), []byte(greeting+" from WAT"), 1)
	app := deploy.App{Name: "hello", Hosts: []string{"hello.test"}, Components: []deploy.Component{{
		Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."}}}}
	res, err := w.pusher.PushApp(context.Background(), w.regAddr+"/apps/hello", app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if signed {
		if _, err := signer.Sign(context.Background(), res.Ref, w.key, signer.SignOptions{}); err != nil {
			t.Fatalf("sign: %v", err)
		}
	}
	return res.Ref
}

func (w *coreWorld) wantServes(want string) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.apps.URL+"/", nil)
	req.Host = "hello.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
		w.t.Fatalf("GET http://hello.test/ = %d %q, want 200 with %q", resp.StatusCode, b, want)
	}
}

// TestCorePutRollBackDeleteRestore drives the core through its Go API
// alone: verify → pull → store → deploy, the refusals that leave the
// version before serving, a rollback, a restart restoring from the state
// directory without any registry, and a delete.
func TestCorePutRollBackDeleteRestore(t *testing.T) {
	w := newCoreWorld(t)
	ctx := context.Background()
	v1, v2 := w.push("Hallo", true), w.push("Hullo", true)
	unsigned := w.push("Hillo", false)
	digest := func(ref string) string { _, d, _ := strings.Cut(ref, "@"); return d }

	ai, err := w.core.Put(ctx, "hello", api.PutRequest{Ref: v1, Secrets: map[string]string{"k": "v"}, Owner: "git:example//apps#local"})
	if err != nil {
		t.Fatalf("put v1: %v", err)
	}
	if ai.Status != api.StatusServing || ai.Digest != digest(v1) || ai.VerifiedBy != "trusted" || !ai.Healthy ||
		ai.Owner != "git:example//apps#local" || len(ai.Components) != 1 || ai.Components[0].Name != "web" {
		t.Fatalf("put v1 answered %+v", ai)
	}
	if want := api.SecretHashes(api.SecretHashKey("tok"), "hello", map[string]string{"k": "v"}); ai.SecretHashes["k"] != want["k"] {
		t.Errorf("secret hash %q, want %q (keyed with Options.SecretHashKey)", ai.SecretHashes["k"], want["k"])
	}
	w.wantServes("Hallo")

	// Refusals: each classified as a client will see it, v1 still serving.
	for _, tc := range []struct {
		name string
		req  api.PutRequest
		is   error
		code string
	}{
		{"unsigned", api.PutRequest{Ref: unsigned}, signer.ErrUnsigned, api.CodeVerification},
		{"no digest", api.PutRequest{Ref: w.regAddr + "/apps/hello:latest"}, core.ErrBadRequest, api.CodeBadRequest},
		{"another app's name", api.PutRequest{Ref: v2}, core.ErrAppMismatch, api.CodeRejected},
	} {
		name := "hello"
		if tc.name == "another app's name" {
			name = "other"
		}
		_, err := w.core.Put(ctx, name, tc.req)
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.is)
		}
		if code, _ := core.Classify(err); code != tc.code {
			t.Errorf("%s: Classify = %q, want %q", tc.name, code, tc.code)
		}
		w.wantServes("Hallo")
	}
	if _, err := w.core.RollBack(ctx, "hello"); !errors.Is(err, host.ErrNoPrevious) {
		t.Fatalf("rollback without a previous version: %v, want host.ErrNoPrevious", err)
	}

	if _, err := w.core.Put(ctx, "hello", api.PutRequest{Ref: v2}); err != nil {
		t.Fatalf("put v2: %v", err)
	}
	w.wantServes("Hullo")
	ai, err = w.core.RollBack(ctx, "hello")
	if err != nil || ai.Digest != digest(v1) || ai.Previous != digest(v2) || ai.RolledBack != nil {
		t.Fatalf("rollback: %+v, %v; want v1 serving with v2 as previous", ai, err)
	}
	w.wantServes("Hallo")

	// A restart without any registry restores both versions from the state
	// directory, re-verifying their cached signatures.
	w.stop()
	rep := w.start(false)
	if len(rep.Serving) != 1 || rep.Serving[0] != "hello" || len(rep.Failed) != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	w.wantServes("Hallo")
	ai, err = w.core.Get("hello")
	if err != nil || ai.Digest != digest(v1) || ai.Previous != digest(v2) || ai.Owner != "git:example//apps#local" {
		t.Fatalf("after restart: %+v, %v", ai, err)
	}
	if list := w.core.List(); len(list) != 1 || list[0].Name != "hello" {
		t.Fatalf("List = %+v", list)
	}

	if err := w.core.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.core.Get("hello"); !errors.Is(err, host.ErrNotFound) {
		t.Fatalf("Get after delete: %v, want host.ErrNotFound", err)
	}
	if err := w.core.Delete(ctx, "hello"); err != nil {
		t.Fatalf("deleting an absent app: %v", err)
	}
	w.stop()
	if rep := w.start(false); len(rep.Serving) != 0 || len(rep.Failed) != 0 {
		t.Fatalf("restore after delete: %+v, want nothing", rep)
	}
}

// TestCoreNeedsRuntimeAndPolicy: New refuses a core without a runtime, or
// with an unusable trust policy while verification is on.
func TestCoreNeedsRuntimeAndPolicy(t *testing.T) {
	if _, err := core.New(core.Options{}); err == nil {
		t.Error("New without a runtime succeeded")
	}
	rt, err := host.New(host.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if _, err := core.New(core.Options{Runtime: rt}); err == nil {
		t.Error("New with an empty policy and verification on succeeded")
	}
	if _, err := core.New(core.Options{Runtime: rt, InsecureSkipVerify: true}); err != nil {
		t.Errorf("New with verification off: %v", err)
	}
}
