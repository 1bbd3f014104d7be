package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestBinarySIGTERMDuringFlood: the real ferry-host, told to stop with
// SIGTERM while a guest floods stderr with a deadline a minute away, stops
// the guest when its --shutdown-timeout is up, answers the in-flight
// request 503 and exits 0 soon after; and its log stays small (the guest's
// share is capped per request). Before the fix, the guest kept flooding and
// the process had not exited 12 s after SIGTERM with a 2 s shutdown timeout.
func TestBinarySIGTERMDuringFlood(t *testing.T) {
	bin := buildHost(t, runtime.GOARCH, "")
	flood, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flood.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	_, ref := publishApp(t, "flood", flood, func(c *deploy.Component) {
		c.Health = nil
		c.Limits.Timeout = deploy.Duration(time.Minute)
	})
	const grace = 2 * time.Second
	p := startHost(t, time.Minute, bin, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--trust-key", trustKeyFile(t), "--log-format", "json",
		"--shutdown-timeout", grace.String())
	c, err := driver.NewClient(p.ctlURL, testToken, driver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, digest, _ := strings.Cut(ref, "@")
	if _, err := c.Put(context.Background(), targets.DesiredApp{Name: "flood", Ref: ref, Digest: digest}); err != nil {
		t.Fatalf("put: %v", err)
	}
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, p.appsURL+"/", nil)
		req.Host = "flood.localhost"
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	for !strings.Contains(p.stderr.String(), `"source":"guest"`) {
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		t.Logf("exited %v after SIGTERM (shutdown timeout %v): %v", time.Since(start).Round(time.Millisecond), grace, err)
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(grace + 10*time.Second):
		t.Fatalf("ferry-host still running %v after SIGTERM with --shutdown-timeout %v (log %d MB so far)",
			grace+10*time.Second, grace, len(p.stderr.String())>>20)
	}
	select {
	case code := <-got:
		if code != http.StatusServiceUnavailable {
			t.Errorf("in-flight request: %d, want 503", code)
		}
	case <-time.After(5 * time.Second):
		t.Error("in-flight request not answered")
	}
	logs := p.stderr.String()
	if n := len(logs); n > 256<<10 {
		t.Errorf("the host logged %d KiB", n>>10)
	}
	for _, want := range []string{`guest log truncated: dropped`, `stopping guests still running`, `"msg":"ferry-host stopped cleanly"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}
