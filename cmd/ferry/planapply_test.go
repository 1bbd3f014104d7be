package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// newHost builds a real ferry-host in process — runtime, state directory,
// registry client and control API — trusting pubPath.
func newHost(t *testing.T, pubPath, token string) (*host.Runtime, *control.Server) {
	t.Helper()
	dir := t.TempDir()
	rt, err := host.New(host.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	st, err := state.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.New(registry.Options{CacheDir: filepath.Join(dir, "oci"), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := signer.PolicyFromFiles([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := control.NewServer(control.Options{Runtime: rt, Store: st, Registry: rc, Policy: policy, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	startHealth(t, srv)
	return rt, srv
}

// startHealth runs srv's health prober, as ferry-host does, until the
// test ends.
func startHealth(t *testing.T, srv *control.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.RunHealth(ctx) }() //nolint:errcheck // nil on cancel
	t.Cleanup(func() { cancel(); <-done })
}

// localHost starts a real ferry-host (see newHost) on loopback listeners
// and returns the app and control URLs.
func localHost(t *testing.T, pubPath, token string) (apps, ctl string) {
	t.Helper()
	rt, srv := newHost(t, pubPath, token)
	a := httptest.NewServer(rt)
	c := httptest.NewServer(srv)
	t.Cleanup(a.Close)
	t.Cleanup(c.Close)
	return a.URL, c.URL
}

func get(t *testing.T, url, hostHeader string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = hostHeader
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPushPlanApplyEndToEnd drives the CLI the way the README does: keygen,
// plan with -detailed-exitcode, apply, a no-op plan, a saved plan that goes
// stale, and a verify of what was pushed — against a real registry and a
// real host runtime that verifies signatures itself.
func TestPushPlanApplyEndToEnd(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	t.Setenv("FERRY_PASSWORD", "test-password")
	t.Setenv("FERRY_HOST_TOKEN", "host-token-123")
	t.Setenv("HOME", work)

	if code, out, errs := ferry(t, "keygen"); code != exitOK {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	reg := testenv.Registry(t)
	appsURL, ctlURL := localHost(t, filepath.Join(work, "cosign.pub"), "host-token-123")

	// The hello-wat example, pointed at this host.
	src := filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat")
	app := filepath.Join(work, "app")
	os.MkdirAll(app, 0o755)
	for _, f := range []string{"ferry.hcl", "hello.wasm", "hello.wat"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "ferry.hcl" {
			b = []byte(strings.ReplaceAll(string(b), "http://127.0.0.1:8081", ctlURL))
		}
		os.WriteFile(filepath.Join(app, f), b, 0o644)
	}
	common := []string{"--repository", reg + "/e2e", "--key", "cosign.key", "--build-cache", filepath.Join(work, "build"), "--cache-dir", filepath.Join(work, "oci")}

	code, out, errs := ferry(t, append([]string{"plan", "-detailed-exitcode", app}, common...)...)
	if code != 2 || !strings.Contains(out, "+ create hello-wat") {
		t.Fatalf("first plan: exit %d (want 2)\n%s\n%s", code, out, errs)
	}
	code, out, errs = ferry(t, append([]string{"apply", "-auto-approve", app}, common...)...)
	if code != exitOK || !strings.Contains(out, "1 applied") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	if status, body := get(t, appsURL+"/", "hello-wat.localhost"); status != 200 || !strings.Contains(body, "Hello from WAT") {
		t.Fatalf("after apply GET / = %d %q", status, body)
	}
	code, out, errs = ferry(t, append([]string{"plan", "-detailed-exitcode", "-out", "noop.plan", app}, common...)...)
	if code != exitOK {
		t.Fatalf("second plan: exit %d (want 0, no changes)\n%s\n%s", code, out, errs)
	}

	// A saved plan goes stale when the target moves before it is applied.
	code, out, errs = ferry(t, append([]string{"plan", "-o", "json", "-out", "delete.plan", filepath.Join(work, "empty")}, common...)...)
	if code == exitOK {
		t.Fatalf("plan of a missing dir succeeded: %s", out)
	}
	original := mustRead(t, filepath.Join(app, "ferry.hcl"))
	os.WriteFile(filepath.Join(app, "ferry.hcl"), []byte(strings.Replace(original, `apps     = ["hello-wat"]`, `apps     = []`, 1)), 0o644)
	code, out, errs = ferry(t, append([]string{"plan", "-out", "delete.plan", app}, common...)...)
	if code != exitOK || !strings.Contains(out, "- delete hello-wat") {
		t.Fatalf("delete plan: exit %d\n%s\n%s", code, out, errs)
	}
	// Move the target: apply the old no-op plan's world away by deleting by hand.
	c, _ := driver.NewClient(ctlURL, "host-token-123", driver.ClientOptions{})
	if err := c.Delete(context.Background(), "hello-wat"); err != nil {
		t.Fatal(err)
	}
	code, _, errs = ferry(t, "apply", "delete.plan", app)
	if code != exitError || !strings.Contains(errs, "stale") {
		t.Fatalf("stale plan applied: exit %d\n%s", code, errs)
	}

	// What was pushed verifies with the public key, by digest, in JSON.
	var plan struct {
		Targets []struct {
			Observed []struct{ Ref string }
			Changes  []struct {
				Before *struct{ Ref string }
			}
		}
	}
	b, err := os.ReadFile("delete.plan")
	if err != nil || json.Unmarshal(b, &plan) != nil || len(plan.Targets) == 0 || len(plan.Targets[0].Changes) == 0 || plan.Targets[0].Changes[0].Before == nil {
		t.Fatalf("cannot read the ref from delete.plan: %v\n%s", err, b)
	}
	ref := plan.Targets[0].Changes[0].Before.Ref
	code, out, errs = ferry(t, "verify", "--key", "cosign.pub", "-o", "json", ref)
	if code != exitOK || !strings.Contains(out, `"verified": true`) {
		t.Fatalf("verify %s: exit %d\n%s\n%s", ref, code, out, errs)
	}

	// destroy removes every managed app from the spec's targets, and only those.
	os.WriteFile(filepath.Join(app, "ferry.hcl"), []byte(original), 0o644)
	if code, out, errs := ferry(t, append([]string{"apply", "-auto-approve", app}, common...)...); code != exitOK {
		t.Fatalf("re-apply: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = ferry(t, "destroy", "-auto-approve", app)
	if code != exitOK || !strings.Contains(out, "- delete hello-wat") {
		t.Fatalf("destroy: exit %d\n%s\n%s", code, out, errs)
	}
	// Its reason is the destroy, not a spec that no longer has the app.
	if !strings.Contains(out, "reason: destroy") || strings.Contains(out, "removed from the spec") {
		t.Fatalf("destroy plan does not give destroy as the reason:\n%s", out)
	}
	if apps, err := c.Observe(context.Background()); err != nil || len(apps) != 0 {
		t.Fatalf("after destroy the host runs %+v (%v)", apps, err)
	}
	if status, _ := get(t, appsURL+"/", "hello-wat.localhost"); status != http.StatusNotFound {
		t.Fatalf("after destroy GET / = %d, want 404", status)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
