package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// TestUpRefusesPlainControlOffLoopback: like ferry-host, ferry up does not
// serve the control API (its bearer token) over plain HTTP on a
// non-loopback address; it refuses before it starts anything.
func TestUpRefusesPlainControlOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8081"} {
		data := t.TempDir()
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		code := run(ctx, []string{"up", "--data-dir", data, "--control-addr", addr,
			"--apps-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0", "--device-addr", "127.0.0.1:0", t.TempDir()},
			strings.NewReader(""), &stdout, &stderr)
		cancel()
		if code != exitUsage || !strings.Contains(stderr.String(), "loopback") {
			t.Errorf("--control-addr %s: exit %d, stderr %q; want a usage error about loopback", addr, code, stderr.String())
		}
		if strings.Contains(stdout.String(), "ferry up: registry") {
			t.Errorf("--control-addr %s: ferry up started serving:\n%s", addr, stdout.String())
		}
	}
}

// TestUpRegistryRefusesAnonymousWrites runs ferry up on a copy of
// examples/hello-wat: its own build, push and sign go through (the app
// serves), while an anonymous PUT of a manifest (overwriting the app's
// signature tag) and an anonymous DELETE of the manifest are refused by
// its embedded registry and change nothing; anonymous reads still work.
func TestUpRegistryRefusesAnonymousWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(filepath.Join(dir, "hello-wat"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ferry.hcl", "hello.wasm", "hello.wat"} {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "hello-wat", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr testenv.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"up", "--data-dir", data, "--interval", "1h", "--log-level", "warn",
			"--apps-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0", "--device-addr", "127.0.0.1:0",
			dir}, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ferry up exited %d\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("ferry up did not stop within 30s of its context ending")
		}
	})
	lineRE := regexp.MustCompile(`ferry up: (registry|apps)\s+(http://\S+)`)
	urls := make(chan [2]string, 2)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := lineRE.FindStringSubmatch(sc.Text()); m != nil {
				urls <- [2]string{m[1], m[2]}
			}
		}
	}()
	var regURL, appsURL string
	for regURL == "" || appsURL == "" {
		select {
		case u := <-urls:
			if u[0] == "registry" {
				regURL = u[1]
			} else {
				appsURL = u[1]
			}
		case <-time.After(time.Minute):
			t.Fatalf("ferry up printed no URLs; stderr:\n%s", stderr.String())
		}
	}
	// ferry up's own push and signature went through: the host verified
	// and serves the app.
	waitBody(t, appsURL+"/", "hello-wat.localhost", "Hello from WAT on ferry!", 2*time.Minute)

	do := func(method, path, ctype string, body []byte) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, regURL+path, bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	// Anonymous reads work: the tag list and the app's manifest.
	code, _, tags := do(http.MethodGet, "/v2/up/hello-wat/tags/list", "", nil)
	if code != http.StatusOK {
		t.Fatalf("anonymous tag list = %d %s", code, tags)
	}
	sigTag := regexp.MustCompile(`sha256-[0-9a-f]{64}\.sig`).FindString(string(tags))
	if sigTag == "" {
		t.Fatalf("no signature tag in %s", tags)
	}
	digest := "sha256:" + strings.TrimSuffix(strings.TrimPrefix(sigTag, "sha256-"), ".sig")
	code, hdr, manifest := do(http.MethodGet, "/v2/up/hello-wat/manifests/"+digest, "", nil)
	if code != http.StatusOK {
		t.Fatalf("anonymous manifest GET = %d", code)
	}
	_, _, sigBefore := do(http.MethodGet, "/v2/up/hello-wat/manifests/"+sigTag, "", nil)

	// Anonymous writes are refused: overwrite the signature tag with the
	// app's own manifest, delete the manifest.
	if code, _, b := do(http.MethodPut, "/v2/up/hello-wat/manifests/"+sigTag, hdr.Get("Content-Type"), manifest); code != http.StatusUnauthorized {
		t.Errorf("anonymous PUT over the signature tag = %d %s; want 401", code, b)
	}
	if code, _, b := do(http.MethodDelete, "/v2/up/hello-wat/manifests/"+digest, "", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous DELETE of the manifest = %d %s; want 401", code, b)
	}
	if code, _, b := do(http.MethodPost, "/v2/up/hello-wat/blobs/uploads/", "", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous blob upload = %d %s; want 401", code, b)
	}
	// Nothing changed.
	if code, _, _ := do(http.MethodGet, "/v2/up/hello-wat/manifests/"+digest, "", nil); code != http.StatusOK {
		t.Errorf("after the refused writes the manifest GET = %d", code)
	}
	if _, _, sigAfter := do(http.MethodGet, "/v2/up/hello-wat/manifests/"+sigTag, "", nil); !bytes.Equal(sigBefore, sigAfter) {
		t.Error("the signature tag changed")
	}
	waitBody(t, appsURL+"/", "hello-wat.localhost", "Hello from WAT on ferry!", 5*time.Second)
}
