package main

import (
	"context"
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

// TestPlanApplyEnforceSpecTrust: ferry plan and ferry apply refuse an app
// whose artifact is signed only by a key the spec's trust block does not
// list — exit 1, naming the app and the policy — even though the real host
// they target trusts that key too; signed with the trusted key, the same
// spec plans and applies.
func TestPlanApplyEnforceSpecTrust(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	t.Setenv("FERRY_PASSWORD", "test-password")
	t.Setenv("FERRY_HOST_TOKEN", "host-token-trust")
	t.Setenv("HOME", work)
	for _, k := range []string{"trusted", "other"} {
		if code, out, errs := ferry(t, "keygen", "--output-prefix", k); code != exitOK {
			t.Fatalf("keygen %s: %d %s %s", k, code, out, errs)
		}
	}
	reg := testenv.Registry(t)

	// A real host trusting both keys.
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
	policy, err := signer.PolicyFromFiles([]string{"trusted.pub", "other.pub"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := control.NewServer(control.Options{Runtime: rt, Store: st, Registry: rc, Policy: policy, Token: "host-token-trust"})
	if err != nil {
		t.Fatal(err)
	}
	startHealth(t, srv)
	apps, ctl := httptest.NewServer(rt), httptest.NewServer(srv)
	t.Cleanup(apps.Close)
	t.Cleanup(ctl.Close)

	// hello-wat, pointed at this host, trusting trusted.pub only.
	src := filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat")
	app := filepath.Join(work, "app")
	os.MkdirAll(app, 0o755)
	for _, f := range []string{"ferry.hcl", "hello.wasm"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "ferry.hcl" {
			b = []byte("trust {\n  keys = [\"./trusted.pub\"]\n}\n\n" + strings.ReplaceAll(string(b), "http://127.0.0.1:8081", ctl.URL))
		}
		os.WriteFile(filepath.Join(app, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(app, "trusted.pub"), []byte(mustRead(t, "trusted.pub")), 0o644)
	pub, err := signer.LoadPublicKeyFile("trusted.pub")
	if err != nil {
		t.Fatal(err)
	}
	common := func(key string) []string {
		return []string{"--repository", reg + "/trust", "--key", key, "--build-cache", filepath.Join(work, "build"), "--cache-dir", filepath.Join(work, "oci")}
	}
	refusal := "app hello-wat: refused by the spec's trust policy (trust block at ferry.hcl:1: keys trusted.pub (" + signer.KeyID(pub.Public) + "))"

	code, out, errs := ferry(t, append([]string{"plan", "-detailed-exitcode", app}, common("other.key")...)...)
	if code != exitError || !strings.Contains(errs, refusal) || !strings.Contains(errs, "no signature matches the trust policy") || strings.Contains(out, "+ create hello-wat") {
		t.Fatalf("plan signed by other.key: exit %d (want 1 and %q)\n%s\n%s", code, refusal, out, errs)
	}
	code, out, errs = ferry(t, append([]string{"apply", "-auto-approve", app}, common("other.key")...)...)
	if code != exitError || !strings.Contains(errs, refusal) {
		t.Fatalf("apply signed by other.key: exit %d (want 1 and %q)\n%s\n%s", code, refusal, out, errs)
	}
	c, _ := driver.NewClient(ctl.URL, "host-token-trust", driver.ClientOptions{})
	if running, err := c.Observe(context.Background()); err != nil || len(running) != 0 {
		t.Fatalf("after the refused apply the host runs %+v (%v)", running, err)
	}

	code, out, errs = ferry(t, append([]string{"plan", "-detailed-exitcode", app}, common("trusted.key")...)...)
	if code != 2 || !strings.Contains(out, "+ create hello-wat") {
		t.Fatalf("plan signed by trusted.key: exit %d (want 2)\n%s\n%s", code, out, errs)
	}
	code, out, errs = ferry(t, append([]string{"apply", "-auto-approve", app}, common("trusted.key")...)...)
	if code != exitOK || !strings.Contains(out, "1 applied") {
		t.Fatalf("apply signed by trusted.key: exit %d\n%s\n%s", code, out, errs)
	}
	if status, body := get(t, apps.URL+"/", "hello-wat.localhost"); status != 200 || !strings.Contains(body, "Hello from WAT") {
		t.Fatalf("after apply GET / = %d %q", status, body)
	}
}
