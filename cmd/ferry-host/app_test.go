package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
)

var appServingRE = regexp.MustCompile(`^ferry-host app: serving \S+ on (http://\S+), health on (http://\S+)$`)

// waitReadyz polls base/readyz until it answers want, and returns the
// body of that answer.
func waitReadyz(t *testing.T, base string, want int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := getApp(t, base, "", "/readyz")
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz = %d %q after %v, want %d", base, code, body, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAppBinary runs the real ferry-host binary in single-app mode the way
// a pod of the kubernetes target runs it (the trust keys, config and
// secrets as mounted directories, no HOME): the signed app becomes ready, answers on
// --listen under any Host header, and SIGTERM stops it with exit code 0.
func TestAppBinary(t *testing.T) {
	bin := buildHost(t, runtime.GOARCH, "")
	_, ref := publishHello(t, "hello-wat")
	trust := t.TempDir()
	_, pub := signingKey(t)
	if err := os.WriteFile(filepath.Join(trust, "cosign.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "app", "--ref", ref, "--trust-key", trust,
		"--config-dir", t.TempDir(), "--secrets-dir", t.TempDir(),
		"--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--log-format", "json")
	cmd.Env = []string{"PATH=/"} // a container's environment: no HOME
	proc, m := testenv.StartProcess(t, cmd, appServingRE, time.Minute)
	appURL, healthURL := m[1], m[2]

	if code, _ := getApp(t, healthURL, "", "/livez"); code != http.StatusOK {
		t.Fatalf("/livez = %d", code)
	}
	_, dgst, _ := strings.Cut(ref, "@")
	if body := waitReadyz(t, healthURL, http.StatusOK, time.Minute); body != "ready: hello-wat serves "+dgst+"\n" {
		t.Fatalf("/readyz body %q", body)
	}
	wantHello(t, appURL, "hello-wat.localhost")
	wantHello(t, appURL, "hello-wat.default.svc") // a pod answers whatever name it is reached by
	if code, body := getApp(t, healthURL, "", "/metrics"); code != 200 || !strings.Contains(body, "\nferry_host_app_ready 1\n") {
		t.Fatalf("/metrics = %d, ferry_host_app_ready 1 missing", code)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Within(t, proc.Done, "exit after SIGTERM"); err != nil {
		t.Fatalf("ferry-host app exited with %v after SIGTERM (want 0):\n%s", err, proc.Stderr.String())
	}
	if logs := proc.Stderr.String(); !strings.Contains(logs, `"msg":"ferry-host app stopped cleanly"`) {
		t.Fatalf("no clean-stop line in the logs:\n%s", logs)
	}
}

// TestAppUntrustedInProcess: run("app", ...) with a trust key that did not
// sign the artifact: /readyz answers 503 "signature: ...", the app
// listener never serves the app, and cancelling (SIGTERM's context) returns 0.
func TestAppUntrustedInProcess(t *testing.T) {
	_, ref := publishHello(t, "hello-wat")
	_, otherPub, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.pub")
	os.WriteFile(other, otherPub, 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	code := make(chan int, 1)
	args := []string{"app", "--ref", ref, "--trust-key", other, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--retry-max", "200ms"}
	go func() { code <- run(ctx, args, func(string) string { return "" }, stdout, stderr) }()
	var m []string
	for deadline := time.Now().Add(time.Minute); m == nil; time.Sleep(10 * time.Millisecond) {
		m = appServingRE.FindStringSubmatch(strings.TrimSpace(stdout.String()))
		if time.Now().After(deadline) {
			t.Fatalf("no serving line:\n%s", stderr.String())
		}
	}
	appURL, healthURL := m[1], m[2]
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var c int
		if c, body = getApp(t, healthURL, "", "/readyz"); c == http.StatusServiceUnavailable && strings.HasPrefix(body, "signature: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q, want 503 \"signature: ...\"", c, body)
		}
	}
	if !strings.Contains(body, "no signature matches") {
		t.Fatalf("/readyz reason %q does not say the key did not match", body)
	}
	if c, b := getApp(t, appURL, "hello-wat.localhost", "/"); c != http.StatusServiceUnavailable || strings.Contains(b, "Hello") {
		t.Fatalf("the app listener answered %d %q for an artifact that did not verify", c, b)
	}
	cancel()
	if c := testenv.Within(t, code, "run to return"); c != 0 {
		t.Fatalf("run returned %d after cancel, want 0:\n%s", c, stderr.String())
	}
}

// TestAppUsage: --help documents the mode with an example and exits 0;
// mistakes exit 2 and say what is wrong.
func TestAppUsage(t *testing.T) {
	key := trustKeyFile(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"app", "--help"}, 0, "Example:\n\n  ferry-host app --ref "},
		{[]string{"app", "--trust-key", key}, 2, "--ref is required"},
		{[]string{"app", "--ref", "127.0.0.1:1/a@sha256:" + strings.Repeat("a", 64), "--state-dir", t.TempDir()}, 2, "give at least one --trust-key"},
		{[]string{"app", "--ref", "127.0.0.1:1/a:latest", "--trust-key", key, "--state-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"}, 2, "by digest only"},
		{[]string{"app", "--ref", "127.0.0.1:1/a@sha256:" + strings.Repeat("a", 64), "--trust-key", t.TempDir(), "--state-dir", t.TempDir()}, 2, "holds no *.pub file"},
		{[]string{"app", "--bogus"}, 2, "flag provided but not defined"},
	} {
		var stdout, stderr strings.Builder
		got := run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
		if got != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("ferry-host %s = %d, stderr:\n%s\nwant %d and %q", strings.Join(tc.args, " "), got, stderr.String(), tc.code, tc.want)
		}
	}
}
