package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/control"
)

// TestQEMU cross-builds ferry-host for linux/arm64 and linux/arm (GOARM=7,
// where wazero runs its interpreter), runs each binary under qemu-user,
// deploys the hello-wat example through its control API from a loopback
// registry and gets a response. Emulation is 6–14× slower, hence the
// generous timeouts. The emulators come from scripts/testdeps.sh.
func TestQEMU(t *testing.T) {
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
			_, ref := publishHello(t, "hello-wat")
			p := startHost(t, 3*time.Minute, emu, "-cpu", tc.cpu, bin,
				"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--state-dir", t.TempDir(),
				"--trust-key", trustKeyFile(t))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c, err := control.NewClient(p.ctlURL, testToken, control.ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, digest, _ := strings.Cut(ref, "@")
			start := time.Now()
			if err := c.Put(ctx, targets.DesiredApp{Name: "hello-wat", Ref: ref, Digest: digest}); err != nil {
				t.Fatalf("put under %s: %v", tc.qemu, err)
			}
			t.Logf("%s: verify + pull + deploy took %v", tc.qemu, time.Since(start).Round(time.Millisecond))
			wantHello(t, p.appsURL, "hello-wat.localhost")
			p.stop(t, 2*time.Minute)
		})
	}
}
