package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestBinary builds the real ferry-host, runs it on 127.0.0.1:0 ports,
// deploys the hello-wat example through the control API from a loopback
// registry, gets a response, stops it with SIGTERM, then starts it again on
// the same state directory with the registry stopped: the app serves again.
func TestBinary(t *testing.T) {
	bin := buildHost(t, runtime.GOARCH, "")
	reg, ref := publishHello(t, "hello-wat")
	stateDir := t.TempDir()
	args := []string{bin, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--state-dir", stateDir,
		"--trust-key", trustKeyFile(t), "--log-format", "json"}

	p := startHost(t, time.Minute, args...)
	if !strings.HasPrefix(p.appsURL, "http://127.0.0.1:") || strings.HasSuffix(p.appsURL, ":0") {
		t.Fatalf("printed app address %q", p.appsURL)
	}
	ctx := context.Background()
	c, err := driver.NewClient(p.ctlURL, testToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, digest, _ := strings.Cut(ref, "@")
	if _, err := c.Put(ctx, targets.DesiredApp{Name: "hello-wat", Ref: ref, Digest: digest}); err != nil {
		t.Fatalf("put: %v", err)
	}
	wantHello(t, p.appsURL, "hello-wat.localhost")
	obs, err := c.Observe(ctx)
	if err != nil || len(obs) != 1 || obs[0].Digest != digest || !obs[0].Managed || !obs[0].Healthy {
		t.Fatalf("Observe: %+v %v", obs, err)
	}
	bad, _ := driver.NewClient(p.ctlURL, "nope", driver.ClientOptions{})
	if _, err := bad.Observe(ctx); !errors.Is(err, driver.ErrUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	p.stop(t, 30*time.Second)
	logs := p.stderr.String()
	for _, want := range []string{`"msg":"ferry-host stopped cleanly"`, `"msg":"app put"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(logs, testToken) {
		t.Error("token in the logs")
	}

	reg.Close()
	p = startHost(t, time.Minute, args...)
	wantHello(t, p.appsURL, "hello-wat.localhost")
	p.stop(t, 30*time.Second)
}

// TestBinaryRefusesBadSetup: mistakes on the command line stop the real
// binary with exit code 2 and a message naming the flag.
func TestBinaryRefusesBadSetup(t *testing.T) {
	bin := buildHost(t, runtime.GOARCH, "")
	dir := t.TempDir()
	badKey := filepath.Join(dir, "bad.pub")
	os.WriteFile(badKey, []byte("not a key"), 0o644)
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"no trust key", []string{"--state-dir", dir}, []string{"FERRY_HOST_TOKEN=t"}, "--trust-key"},
		{"bad trust key", []string{"--state-dir", dir, "--trust-key", badKey}, []string{"FERRY_HOST_TOKEN=t"}, "bad.pub"},
		{"no token", []string{"--state-dir", dir, "--trust-key", trustKeyFile(t)}, []string{"FERRY_HOST_TOKEN="}, "no control token"},
		{"control off loopback without TLS", []string{"--state-dir", dir, "--trust-key", trustKeyFile(t), "--control", "0.0.0.0:0"},
			[]string{"FERRY_HOST_TOKEN=t"}, "not a loopback address"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			var ee interface{ ExitCode() int }
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output:\n%s\nwant exit 2 mentioning %q", err, out, tc.want)
			}
		})
	}
}
