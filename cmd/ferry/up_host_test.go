package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/registry"
)

// TestUpHostServesMetrics checks that ferry up's host is built as
// ferry-host builds itself: its control API serves the host's metrics
// (the core's deploys, the runtime's, the control API's requests) to the
// host token, and refuses them without it.
func TestUpHostServesMetrics(t *testing.T) {
	root, dir := newSoloDir(t)
	gitCmd(t, root, "init", "-q", "-b", "main")
	gitCmd(t, root, "add", "-A")
	gitCmd(t, root, "commit", "-q", "-m", "solo")
	head := strings.TrimSpace(gitCmd(t, root, "rev-parse", "HEAD"))
	up := startUp(t, "--interval", "1h", dir)
	up.waitRound(t, head, time.Minute)
	waitBody(t, up.apps+"/", "solo.localhost", "Hello from WAT on ferry!", 5*time.Second)

	token, err := os.ReadFile(filepath.Join(up.data, "host.token"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, up.host+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the host token answered %d, want 401", code)
	}
	code, body := get(strings.TrimSpace(string(token)))
	if code != http.StatusOK {
		t.Fatalf("GET /metrics with the host token answered %d: %s", code, body)
	}
	for _, want := range []string{
		`ferry_host_control_puts_total{result="ok"} 1`, // the core's: the one deploy of solo
		`ferry_host_control_requests_total{code="200",op="put"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(body, "\nferry_host_") || strings.Count(body, "\nferry_host_") < 5 {
		t.Errorf("GET /metrics has few ferry_host_ series:\n%s", body)
	}
}

// TestUpHostReadsRegistryLogin checks that ferry up's host takes the
// environment's registry login as ferry-host does (registry.EnvCredentials):
// a login without the registry host it is for is refused before anything
// serves, with a message naming the variable to set.
func TestUpHostReadsRegistryLogin(t *testing.T) {
	t.Setenv(registry.EnvUsername, "someone")
	t.Setenv(registry.EnvPassword, "not-a-real-password")
	t.Setenv(registry.EnvHost, "")
	root, dir := newSoloDir(t)
	gitCmd(t, root, "init", "-q", "-b", "main")
	gitCmd(t, root, "add", "-A")
	gitCmd(t, root, "commit", "-q", "-m", "solo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"up", "--log-level", "warn", "--data-dir", t.TempDir(),
		"--apps-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0", "--device-addr", "127.0.0.1:0", dir},
		strings.NewReader(""), &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), registry.EnvHost) {
		t.Fatalf("ferry up with a registry login but no %s exited %d, stderr %q; want a failure naming %s", registry.EnvHost, code, stderr.String(), registry.EnvHost)
	}
	if strings.Contains(stderr.String(), "not-a-real-password") || strings.Contains(stdout.String(), "not-a-real-password") {
		t.Error("ferry up printed the registry password")
	}
	if strings.Contains(stdout.String(), "ferry up: apps") {
		t.Errorf("ferry up started serving:\n%s", stdout.String())
	}
}

// TestUpDeviceJoinsInTwoCommands is the README's promise for fleets on the
// local default: with `ferry up` running, `ferry fleet token create` and
// one `ferry-host device` command (a real process, the built binary) make
// a device that enrolls, pulls every app from ferry up's registry,
// verifies it with ferry up's public key and serves it; `ferry fleet
// devices` lists it, and its credential stops working once revoked.
func TestUpDeviceJoinsInTwoCommands(t *testing.T) {
	_, hostBin := e2eBinaries(t)
	root, dir := newSoloDir(t)
	gitCmd(t, root, "init", "-q", "-b", "main")
	gitCmd(t, root, "add", "-A")
	gitCmd(t, root, "commit", "-q", "-m", "solo")
	head := strings.TrimSpace(gitCmd(t, root, "rev-parse", "HEAD"))
	up := startUp(t, "--interval", "1h", dir)
	up.waitRound(t, head, time.Minute)
	if up.devices == "" {
		t.Fatal("ferry up printed no devices line")
	}
	t.Setenv("FERRY_AGENT_TOKEN", up.agent.Token)
	cli := func(args ...string) string {
		t.Helper()
		var o, e bytes.Buffer
		if code := run(context.Background(), append(args, "--agent", up.agent.BaseURL), strings.NewReader(""), &o, &e); code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s%s", strings.Join(args, " "), code, o.String(), e.String())
		}
		return o.String()
	}
	token := strings.TrimSpace(cli("fleet", "token", "create", "--ttl", "10m"))
	cmd := exec.Command(hostBin, "device", "--server", up.devices, "--enroll-token", token,
		"--trust-key", filepath.Join(up.data, "cosign.pub"), "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	proc, m := testenv.StartProcess(t, cmd, regexp.MustCompile(`serving apps on (http://\S+)`), 30*time.Second)
	waitBody(t, m[1]+"/", "solo.localhost", "Hello from WAT on ferry!", time.Minute)
	if strings.Contains(proc.Stderr.String(), token) {
		t.Error("the device logged its enrollment token")
	}
	var devs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(cli("fleet", "devices", "-o", "json")), &devs); err != nil || len(devs) != 1 {
		t.Fatalf("fleet devices: %v %+v", err, devs)
	}
	cli("fleet", "device", "revoke", devs[0].ID)
	if txt := cli("fleet", "devices"); !strings.Contains(txt, "revoked") {
		t.Errorf("fleet devices does not show the revocation:\n%s", txt)
	}
}
