package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// qemuExamples are the examples TestQEMU deploys on each architecture: the
// WAT guest (WAGI, a fresh instance per request), the Go reactor guest and
// the Go guest that counts its visits in a key-value store.
var qemuExamples = []string{"hello-wat", "hello-go", "kv-counter"}

// TestQEMU cross-builds ferry-host for linux/arm64 and linux/arm (GOARM=7,
// where wazero runs its interpreter), runs each binary under qemu-user and
// deploys hello-wat, hello-go and kv-counter through its control API from a
// loopback registry. The examples are built (for wasip1, once, by ferry's
// own builder), pushed and signed by the real release path, and the hosts
// verify the signatures. Each app must answer its own body; kv-counter must
// count 1, 2, 3, and go on at 4 after the host restarts on the same state
// directory (its store is on the device's disk). Emulation is 6–14× slower,
// hence the generous timeouts. The emulators come from scripts/testdeps.sh.
func TestQEMU(t *testing.T) {
	apps := releaseExamples(t, qemuExamples...)
	for _, tc := range []struct{ goarch, goarm, qemu, cpu string }{
		{"arm64", "", "qemu-aarch64-static", "cortex-a72"},
		{"arm", "7", "qemu-arm-static", "cortex-a7"},
	} {
		t.Run(tc.qemu, func(t *testing.T) {
			emu, err := exec.LookPath(tc.qemu)
			if err != nil {
				t.Fatalf("%s not found (%v): install it with `apt-get install qemu-user-static` (scripts/testdeps.sh does)", tc.qemu, err)
			}
			bin := buildHost(t, tc.goarch, tc.goarm)
			argv := []string{emu, "-cpu", tc.cpu, bin,
				"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--state-dir", t.TempDir(),
				"--trust-key", trustKeyFile(t)}
			p := startHost(t, 3*time.Minute, argv...)
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			c, err := driver.NewClient(p.ctlURL, testToken, driver.ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range apps {
				start := time.Now()
				if _, err := c.Put(ctx, a); err != nil {
					t.Fatalf("put %s under %s: %v\n%s", a.Name, tc.qemu, err, p.stderr.String())
				}
				t.Logf("%s: verify + pull + deploy of %s took %v", tc.qemu, a.Name, time.Since(start).Round(time.Millisecond))
			}
			wantHello(t, p.appsURL, "hello-wat.localhost")
			wantBody(t, p.appsURL, "hello-go.localhost", "/?name="+tc.goarch, "Hello, "+tc.goarch+", from ferry!\n")
			for n := 1; n <= 3; n++ {
				wantBody(t, p.appsURL, "kv-counter.localhost", "/", fmt.Sprintf("%d\n", n))
			}
			p.stop(t, 2*time.Minute)

			// The same state directory: the host restores the apps and
			// kv-counter's store still holds 3.
			p = startHost(t, 5*time.Minute, argv...)
			wantBody(t, p.appsURL, "kv-counter.localhost", "/", "4\n")
			wantBody(t, p.appsURL, "hello-go.localhost", "/", "Hello, world, from ferry!\n")
			p.stop(t, 2*time.Minute)
		})
	}
}

// releaseExamples builds, pushes and signs the named examples with the
// release path ferry itself uses (release.BuildRelease: builder, registry
// client, signer) into one embedded registry that lives until the test
// ends, and returns each app as a target is handed it.
func releaseExamples(t *testing.T, names ...string) []targets.DesiredApp {
	t.Helper()
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := signingKey(t)
	opts := release.ReleaseOptions{
		Builder:    builder.New(builder.Options{CacheDir: t.TempDir()}),
		Registry:   rc,
		Repository: reg.Addr() + "/apps",
		Key:        priv,
	}
	var out []targets.DesiredApp
	for _, name := range names {
		start := time.Now()
		rel, err := release.BuildRelease(context.Background(), filepath.Join(testenv.RepoRoot(t), "examples", name), "", opts)
		if err != nil {
			t.Fatalf("releasing examples/%s: %v", name, err)
		}
		ra := rel.Apps[name]
		if ra == nil || !ra.Signed {
			t.Fatalf("examples/%s: release has no signed app %q: %+v", name, name, rel.Apps)
		}
		t.Logf("released examples/%s in %v (%d built)", name, time.Since(start).Round(time.Millisecond), ra.Built)
		out = append(out, targets.DesiredApp{Name: name, Ref: ra.Ref, Digest: ra.Digest, App: ra.App})
	}
	return out
}

// wantBody fails unless GET path with Host host answers 200 and exactly want.
func wantBody(t testing.TB, base, host, path, want string) {
	t.Helper()
	code, body := getApp(t, base, host, path)
	if code != http.StatusOK || body != want {
		t.Fatalf("GET http://%s%s via %s = %d %q; want 200 %q", host, path, base, code, body, want)
	}
}
