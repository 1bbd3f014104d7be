package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/gittest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/sync/notify"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// TestNotifyE2EFleetDevice: `ferry agent` with its device API and
// --notify-webhook, and a real `ferry-host device` process. A commit's
// rollout to the device starts and completes; a commit whose health probe
// fails on the device is rolled back by the device and the rollout
// aborts. The receiver verifies a signed delivery of each, with the
// digests and device counts.
func TestNotifyE2EFleetDevice(t *testing.T) {
	e := agentE2ENewEnv(t)
	reg := agentE2ENewRegistry(t)
	secret := []byte("notify-fleet-e2e-secret")
	t.Setenv("FERRY_NOTIFY_SECRET", string(secret))
	rc := newNotifyE2EReceiver(t, secret)
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

	ctx, cancel := context.WithCancel(context.Background())
	out, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	done := make(chan int, 1)
	args := agentE2EAgentArgs(t, e, srv.URL(), t.TempDir(), "--interval", "1s", "--device-listen", "127.0.0.1:0",
		"--notify-webhook", rc.srv.URL+"/hooks/ferry")
	go func() { done <- run(ctx, args, strings.NewReader(""), out, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("ferry agent did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("ferry agent log (tail):\n%s", agentE2ETail(stderr.String(), 60))
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
	var o, eb testenv.Buffer
	if code := run(context.Background(), []string{"fleet", "token", "create", "--ttl", "1h", "--labels", "ring=edge", "-o", "json", "--agent", agentURL},
		strings.NewReader(""), &o, &eb); code != 0 {
		t.Fatalf("token create: %d %s", code, eb.String())
	}
	var tok struct {
		Secret string       `json:"secret"`
		Token  server.Token `json:"token"`
	}
	if err := json.Unmarshal([]byte(o.String()), &tok); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ferry-host")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin, "./cmd/ferry-host")
	build.Dir = testenv.RepoRoot(t)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ferry-host: %v\n%s", err, b)
	}
	cmd := exec.Command(bin, "device", "--server", deviceAPI, "--enroll-token", tok.Secret, "--name", "dev-a",
		"--data-dir", filepath.Join(t.TempDir(), "dev"), "--trust-key", e.pubPath, "--listen", "127.0.0.1:0",
		"--poll-wait", "5s", "--heartbeat", "1s")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(t.TempDir(), "docker"))
	proc, m := testenv.StartProcess(t, cmd, fleetE2EDeviceRE, 2*time.Minute)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("device log (tail):\n%s", agentE2ETail(proc.Stderr.String(), 40))
		}
	})
	agentE2EWaitServing(t, m[1], "alpha", "alpha v1", 2*time.Minute)

	wait := func(kind notify.Kind, digestNot string) notify.WebhookPayload {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			rc.mu.Lock()
			for _, p := range rc.hooks {
				if p.Kind == kind && p.App == "alpha" && p.Digest != digestNot {
					rc.mu.Unlock()
					return p
				}
			}
			rc.mu.Unlock()
			if time.Now().After(deadline) {
				rc.mu.Lock()
				defer rc.mu.Unlock()
				t.Fatalf("no %s delivery within 2m; got %+v, refused %v", kind, rc.hooks, rc.bad)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// v1 completed at once: no device was enrolled yet.
	v1 := wait(notify.KindRolloutStarted, "")
	if c := wait(notify.KindRolloutCompleted, ""); c.Digest != v1.Digest || c.Devices == nil || c.Devices.Total != 0 {
		t.Errorf("v1 completed %+v", c)
	}
	// v2 rolls out to the device and completes.
	w.WriteBytes("alpha.wasm", agentE2EWasm(t, "alpha v2"))
	w.Commit("alpha v2")
	w.Push()
	started := wait(notify.KindRolloutStarted, v1.Digest)
	completed := wait(notify.KindRolloutCompleted, v1.Digest)
	if started.Target != "edge" || started.Previous != v1.Digest || completed.Digest != started.Digest || completed.Devices == nil ||
		completed.Devices.Healthy != 1 || completed.Devices.Total != 1 {
		t.Errorf("v2 started %+v\ncompleted %+v", started, completed)
	}
	agentE2EWaitServing(t, m[1], "alpha", "alpha v2", time.Minute)

	// v3 fails its health probe on the device: rolled back, aborted.
	w.WriteBytes("alpha.wasm", flaky)
	w.Write("ferry.hcl", fleetE2ESpec(reg.Addr+"/fleet", agentE2EFlakyHCL("alpha")))
	w.Commit("alpha v3: flaky health")
	w.Push()
	aborted := wait(notify.KindRolloutAborted, "")
	if aborted.Previous != started.Digest || aborted.Digest == started.Digest || aborted.Reason == "" || aborted.Devices == nil ||
		aborted.Devices.Failed+aborted.Devices.RolledBack != 1 || !strings.Contains(aborted.Summary, "aborted") {
		t.Errorf("aborted %+v", aborted)
	}
	agentE2EWaitServing(t, m[1], "alpha", "alpha v2", time.Minute)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) != 0 {
		t.Errorf("refused deliveries: %v", rc.bad)
	}
}
