package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// fleetE2ESpec is a spec rolling app alpha (blocks) out to the devices
// labelled ring=edge in two waves of one device each (2 devices), moving
// on after a 10 s soak (longer than a device takes to find and report a
// failing health probe), and aborting at the first failure.
func fleetE2ESpec(repo string, blocks ...string) string {
	return fmt.Sprintf(`registry {
  repository = %q
}

%s
target "edge" {
  type     = "fleet"
  apps     = ["alpha"]
  selector = "ring=edge"

  rollout {
    wave { percent = 50 }
    wave { percent = 100 }

    health_gate {
      success_ratio = 1
      soak          = "10s"
    }
    abort {
      failure_ratio = 0
      min_sample    = 1
    }
    device_timeout = "90s"
    auto_rollback  = true
  }
}
`, repo, strings.Join(blocks, "\n"))
}

var (
	fleetE2EDeviceAPIRE = regexp.MustCompile(`fleet device API on (http://\S+)`)
	fleetE2EDeviceRE    = regexp.MustCompile(`serving apps on (http://\S+)`)
)

// fleetE2EDevice is a real ferry-host process in device mode.
type fleetE2EDevice struct {
	AppsURL string
	proc    *testenv.Process
}

// TestFleetE2ERollout is the fleet path end to end with real parts only: a
// git push, `ferry agent` (in process) building, signing and pushing to a
// real registry, its device API, `ferry fleet token create`, and two real
// `ferry-host device` processes — linux/arm64 and linux/arm/v7 builds
// under qemu-user — that enroll with the token, pull the artifact by
// digest, verify it against their own trust key and serve it.
// A second commit rolls out wave by wave; a third, whose health probe
// fails on the device, is rolled back by the device of the first wave,
// aborts the rollout, and never reaches the device of the second wave.
func TestFleetE2ERollout(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	srv := gittest.NewServer(t, gittest.Options{})
	w := srv.Clone(t)
	flaky, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flaky-health.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write("ferry.hcl", fleetE2ESpec(reg.Addr+"/fleet", agentE2EAppHCL("alpha")))
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v1"))
	w.Commit("alpha v1")
	w.Push()

	// The agent, in process, with its device API on a free loopback port.
	ctx, cancel := context.WithCancel(context.Background())
	out, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1s", "--device-listen", "127.0.0.1:0")
	go func() { done <- run(ctx, args, strings.NewReader(""), out, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry agent exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry agent did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("ferry agent log (tail):\n%s", agentE2ETail(stderr.String(), 80))
		}
	})
	var agentURL, deviceAPI string
	for deadline := time.Now().Add(30 * time.Second); agentURL == "" || deviceAPI == ""; time.Sleep(20 * time.Millisecond) {
		if m := agentE2EAPIRE.FindStringSubmatch(out.String()); m != nil {
			agentURL = m[1]
		}
		if m := fleetE2EDeviceAPIRE.FindStringSubmatch(out.String()); m != nil {
			deviceAPI = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry agent printed no API and device API addresses within 30s:\n%s\n%s", out.String(), stderr.String())
		}
	}

	cli := func(args ...string) string {
		t.Helper()
		var o, eb testenv.Buffer
		if code := run(context.Background(), append(args, "--agent", agentURL), strings.NewReader(""), &o, &eb); code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), eb.String())
		}
		return o.String()
	}
	tokOut := cli("fleet", "token", "create", "--ttl", "1h", "--uses", "2", "--labels", "ring=edge", "-o", "json")
	var tok struct {
		Secret string       `json:"secret"`
		Token  server.Token `json:"token"`
	}
	if err := json.Unmarshal([]byte(tokOut), &tok); err != nil || tok.Secret == "" || tok.Token.MaxUses != 2 {
		t.Fatalf("token create -o json: %v\n%s", err, tokOut)
	}

	// The devices are ARM boards: ferry-host cross-built for linux/arm64
	// and linux/arm/v7, run under qemu-user.
	start := func(name, goarch, goarm, emulator, cpu string) *fleetE2EDevice {
		t.Helper()
		emu, err := exec.LookPath(emulator)
		if err != nil {
			t.Fatalf("%s not found (%v): scripts/testdeps.sh installs qemu-user-static", emulator, err)
		}
		bin := filepath.Join(t.TempDir(), "ferry-host-"+goarch)
		build := exec.Command("go", "build", "-buildvcs=false", "-trimpath", "-o", bin, "./cmd/ferry-host")
		build.Dir = testenv.RepoRoot(t)
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build ferry-host for %s: %v\n%s", goarch, err, out)
		}
		cmd := exec.Command(emu, "-cpu", cpu, bin, "device", "--server", deviceAPI, "--enroll-token", tok.Secret,
			"--labels", "site=lab", "--name", name, "--data-dir", filepath.Join(t.TempDir(), name),
			"--trust-key", e.pubPath, "--listen", "127.0.0.1:0", "--poll-wait", "5s", "--heartbeat", "1s")
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(t.TempDir(), "docker"))
		proc, m := testenv.StartProcess(t, cmd, fleetE2EDeviceRE, 2*time.Minute)
		d := &fleetE2EDevice{AppsURL: m[1], proc: proc}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("device %s log (tail):\n%s", name, agentE2ETail(proc.Stderr.String(), 40))
			}
		})
		return d
	}
	devs := []*fleetE2EDevice{
		start("rpi-a", "arm64", "", "qemu-aarch64-static", "cortex-a72"),
		start("rpi-b", "arm", "7", "qemu-arm-static", "cortex-a7"),
	}
	for _, d := range devs {
		agentE2EWaitServing(t, d.AppsURL, "alpha", "alpha v1", 2*time.Minute)
	}

	// Both devices are in the inventory, with the token's label, their
	// arch, and alpha serving.
	var inv []server.Device
	if err := json.Unmarshal([]byte(cli("fleet", "devices", "-l", "ring=edge", "-o", "json")), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv) != 2 {
		t.Fatalf("fleet devices -l ring=edge: %d devices, want 2: %+v", len(inv), inv)
	}
	for _, d := range inv {
		if d.Labels["ring"] != "edge" || d.Labels["site"] != "lab" || (d.Info.Arch != "arm64" && d.Info.Arch != "arm/v7") || d.TokenID != tok.Token.ID {
			t.Errorf("device %s: labels %v arch %q token %q", d.ID, d.Labels, d.Info.Arch, d.TokenID)
		}
	}
	if txt := cli("fleet", "devices"); !strings.Contains(txt, "alpha@") || !strings.Contains(txt, "ring=edge") {
		t.Errorf("fleet devices (text) lacks the apps or labels:\n%s", txt)
	}

	rollout := func() controller.Rollout {
		t.Helper()
		var ros []controller.Rollout
		if err := json.Unmarshal([]byte(cli("fleet", "rollout", "status", "edge", "-o", "json")), &ros); err != nil || len(ros) != 1 {
			t.Fatalf("rollout status: %v %+v", err, ros)
		}
		return ros[0]
	}
	waitOutcome := func(to string, want fleet.Outcome) controller.Rollout {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ro := rollout()
			if ro.State != nil && to != "" && ro.State.To != to {
				// an older rollout: wait for the new commit's
			} else if ro.State != nil && ro.State.Outcome == want {
				return ro
			}
			if time.Now().After(deadline) {
				t.Fatalf("rollout did not reach %s within 2m:\n%s", want, ro.Summary)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	v1 := waitOutcome("", fleet.OutcomeCompleted)

	// v2 rolls out in two waves and completes.
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	w.Commit("alpha v2")
	w.Push()
	var v2 controller.Rollout
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if v2 = rollout(); v2.State != nil && v2.State.To != v1.State.To {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the v2 commit started no rollout within 1m")
		}
	}
	v2 = waitOutcome(v2.State.To, fleet.OutcomeCompleted)
	for _, d := range devs {
		agentE2EWaitServing(t, d.AppsURL, "alpha", "alpha v2", time.Minute)
	}
	waves := map[int]int{}
	for _, p := range v2.State.Devices {
		waves[p.Wave]++
	}
	if waves[0] != 1 || waves[1] != 1 {
		t.Errorf("v2 devices per wave %v, want one in each of two waves", waves)
	}

	// v3 fails its health probe on the device: the first wave's device
	// rolls it back by itself, the rollout aborts, and the second wave's
	// device never runs it.
	w.WriteBytes("alpha.wasm", flaky)
	w.Write("ferry.hcl", fleetE2ESpec(reg.Addr+"/fleet", agentE2EFlakyHCL("alpha")))
	w.Commit("alpha v3: flaky health")
	w.Push()
	var v3 controller.Rollout
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if v3 = rollout(); v3.State != nil && v3.State.To != v2.State.To {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the v3 commit started no rollout within 1m")
		}
	}
	v3 = waitOutcome(v3.State.To, fleet.OutcomeAborted)
	if len(v3.State.Devices) != 1 {
		t.Fatalf("v3 started %d devices, want only the first wave's one:\n%s", len(v3.State.Devices), v3.Summary)
	}
	for _, d := range devs {
		agentE2EWaitServing(t, d.AppsURL, "alpha", "alpha v2", time.Minute)
	}
	if err := json.Unmarshal([]byte(cli("fleet", "devices", "-o", "json")), &inv); err != nil {
		t.Fatal(err)
	}
	for _, d := range inv {
		p, started := v3.State.Devices[d.ID]
		if started && (p.Status != fleet.StatusRolledBack || p.Reason != fleet.ReasonUnhealthy) {
			t.Errorf("device %s (wave 1) in the v3 rollout: %s (%s), want rolled back after failing unhealthy", d.ID, p.Status, p.Reason)
		}
		for _, a := range d.Status.Apps {
			switch {
			case !started && (a.Failed == v3.State.To || a.Digest == v3.State.To || a.Previous == v3.State.To):
				t.Errorf("device %s outside the started wave ran v3: %+v", d.ID, a)
			case a.Digest != v2.State.To:
				t.Errorf("device %s serves %s, want v2 %s", d.ID, fleet.Short(a.Digest), fleet.Short(v2.State.To))
			}
		}
	}
	if txt := cli("fleet", "rollout", "status", "edge"); !strings.Contains(txt, "abort") {
		t.Errorf("rollout status (text) does not say it aborted:\n%s", txt)
	}
}
