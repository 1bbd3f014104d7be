package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/devicetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/device"
)

const deviceEnrollToken = "fet_cmd-test-enroll-token-5521"

var deviceServingRE = regexp.MustCompile(`^ferry-host device: serving apps on (http://\S+)$`)

// deviceProc is a running `ferry-host device` process.
type deviceProc struct {
	*testenv.Process
	appsURL string
}

func startDevice(t *testing.T, within time.Duration, argv ...string) *deviceProc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	p, m := testenv.StartProcess(t, cmd, deviceServingRE, within)
	return &deviceProc{Process: p, appsURL: m[1]}
}

// kill SIGKILLs the process (a power loss) and waits for it to end.
func (p *deviceProc) kill(t *testing.T) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.Done
}

// helloDesired publishes hello-wat as app "hello" (signed with the test
// key, health path /healthz) and returns the registry's stop and the app.
func helloDesired(t *testing.T) (stop func(), app api.DesiredApp) {
	t.Helper()
	reg, ref := publishHello(t, "hello")
	_, dgst, _ := strings.Cut(ref, "@")
	return func() { reg.Close() }, api.DesiredApp{Name: "hello", Ref: ref, Digest: dgst, Owner: "git:test//fleet#edge"}
}

// deviceRound is what TestDevice and TestQEMUDevice check on one binary
// (argv0 runs it, possibly behind qemu): it enrolls over loopback HTTP,
// pulls, verifies and serves hello-wat and reports it serving with the
// wanted arch; its credential file is 0600; after SIGKILL, with the
// server and the registry gone, a restart serves hello-wat again from its
// data directory; the credential and the token are never in its output.
func deviceRound(t *testing.T, argv0 []string, wantArch string, within time.Duration) {
	srv := devicetest.New(t, deviceEnrollToken)
	stopReg, hello := helloDesired(t)
	srv.SetDesired(hello)
	dir := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "enroll-token")
	if err := os.WriteFile(tokenFile, []byte(deviceEnrollToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, argv0...), "device", "--server", srv.URL(), "--enroll-token-file", tokenFile,
		"--labels", "site=lab,ring=canary", "--data-dir", dir, "--trust-key", trustKeyFile(t),
		"--listen", "127.0.0.1:0", "--poll-wait", "5s", "--backoff-max", "2s", "--log-level", "debug")

	start := time.Now()
	p := startDevice(t, within, argv...)
	t.Logf("listening after %v", time.Since(start).Round(time.Millisecond))
	id, rep := srv.WaitReport(within, "hello serving", func(r api.StatusReport) bool {
		return len(r.Apps) == 1 && r.Apps[0].Phase == api.PhaseServing && r.Apps[0].Digest == hello.Digest && r.Apps[0].Healthy
	})
	t.Logf("%s enrolled, verified, deployed and reported hello serving %v after start", id, time.Since(start).Round(time.Millisecond))
	wantHello(t, p.appsURL, "hello.localhost")
	if rep.Info.Arch != wantArch || rep.Info.OS != "linux" || rep.Info.FreeMemory == 0 || rep.Info.FreeDisk == 0 || rep.Info.UptimeSeconds <= 0 {
		t.Errorf("device info %+v, want arch %s and every figure set", rep.Info, wantArch)
	}
	devs := srv.Devices()
	if len(devs) != 1 || devs[0].Labels["ring"] != "canary" {
		t.Fatalf("devices %+v", devs)
	}
	fi, err := os.Stat(filepath.Join(dir, device.CredentialFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	// Power loss, and the network is gone when it comes back.
	p.kill(t)
	out := p.Stderr.String()
	srv.Close()
	stopReg()
	start = time.Now()
	p2 := startDevice(t, within, argv...)
	wantHello(t, p2.appsURL, "hello.localhost")
	t.Logf("after SIGKILL, serving again without server or registry %v after start", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(within)
	for !strings.Contains(p2.Stderr.String(), "server unreachable") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted device logs no retry:\n%s", p2.Stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out += p2.Stderr.String()
	if strings.Contains(out, devs[0].Credential) || strings.Contains(out, deviceEnrollToken) {
		t.Errorf("the credential or the enrollment token is in ferry-host's output")
	}
	if !strings.Contains(out, "device enrolled") || !strings.Contains(out, "device identity loaded") {
		t.Errorf("want one enrollment, then the stored identity:\n%s", out)
	}
	wantHello(t, p2.appsURL, "hello.localhost")
	// (Under qemu the process is the emulator: its RSS says nothing.)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p2.Cmd.Process.Pid)); err == nil && len(argv0) == 1 {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				t.Logf("device RSS serving one app: %s", strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")))
			}
		}
	}

	// SIGTERM: a clean stop, exit 0.
	if err := p2.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p2.Done:
		if err != nil {
			t.Errorf("ferry-host device exited with %v after SIGTERM:\n%s", err, p2.Stderr.String())
		}
	case <-time.After(within):
		t.Errorf("ferry-host device still running %v after SIGTERM", within)
	}
}

// TestDevice runs the real ferry-host binary (amd64) in device mode.
func TestDevice(t *testing.T) {
	deviceRound(t, []string{buildHost(t, "amd64", "")}, "amd64", 30*time.Second)
}

// TestQEMUDevice runs the arm64 and armv7 builds of ferry-host in device
// mode under qemu-user: enroll, receive hello-wat, verify, serve, report
// (arch "arm64" and "arm/v7"), and come back after SIGKILL without the
// network. The emulators come from scripts/testdeps.sh.
func TestQEMUDevice(t *testing.T) {
	for _, tc := range []struct{ goarch, goarm, qemu, cpu, arch string }{
		{"arm64", "", "qemu-aarch64-static", "cortex-a72", "arm64"},
		{"arm", "7", "qemu-arm-static", "cortex-a7", "arm/v7"},
	} {
		t.Run(tc.qemu, func(t *testing.T) {
			emu, err := exec.LookPath(tc.qemu)
			if err != nil {
				t.Fatalf("%s not found (%v): install it with `apt-get install qemu-user-static` (scripts/testdeps.sh does)", tc.qemu, err)
			}
			deviceRound(t, []string{emu, "-cpu", tc.cpu, buildHost(t, tc.goarch, tc.goarm)}, tc.arch, 3*time.Minute)
		})
	}
}

// TestDeviceUsage: command-line mistakes exit 2 and say what is wrong.
func TestDeviceUsage(t *testing.T) {
	key := trustKeyFile(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data-dir", "d", "--trust-key", key}, "--server is required"},
		{[]string{"--server", "http://127.0.0.1:1", "--trust-key", key}, "--data-dir is required"},
		{[]string{"--server", "http://127.0.0.1:1", "--data-dir", "d"}, "--trust-key"},
		{[]string{"--server", "http://fleet.example.com", "--data-dir", "d", "--trust-key", key}, "loopback"},
		{[]string{"--server", "https://fleet.example.com", "--data-dir", "d", "--trust-key", key, "--labels", "novalue"}, "--labels"},
		{[]string{"--server", "https://fleet.example.com", "--data-dir", "d", "--trust-key", key, "--enroll-token", "a", "--enroll-token-file", key}, "not both"},
		{[]string{"--server", "https://fleet.example.com", "--data-dir", "d", "--trust-key", key, "--enroll-token-file", "/nonexistent"}, "--enroll-token-file"},
	} {
		var stderr bytes.Buffer
		code := run(t.Context(), append([]string{"device"}, tc.args...), func(string) string { return "" }, &bytes.Buffer{}, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("ferry-host device %q = %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
