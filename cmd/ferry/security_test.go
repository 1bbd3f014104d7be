package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"

	"github.com/ferry-wasm/ferry/spec"
)

// bearerSink is a loopback HTTP listener that records every Authorization
// header it is sent: an endpoint a spec committer controls.
type bearerSink struct {
	URL  string
	mu   gosync.Mutex
	seen []string
}

func newBearerSink(t *testing.T) *bearerSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &bearerSink{URL: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Header.Get("Authorization"))
		s.mu.Unlock()
		http.Error(w, "no", http.StatusInternalServerError)
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *bearerSink) saw(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.seen {
		if strings.Contains(h, secret) {
			return true
		}
	}
	return false
}

// TestSpecCannotSendAgentSecretsToItsEndpoint: a committer writes a host
// target whose token comes from one of the agent's own secrets (the signing
// key's password, or any file) and whose endpoint the committer controls.
// ferry must never send that value there.
func TestSpecCannotSendAgentSecretsToItsEndpoint(t *testing.T) {
	const password = "hunter2-signing-password"
	t.Setenv("FERRY_PASSWORD", password)
	secretFile := filepath.Join(t.TempDir(), "agent.token")
	os.WriteFile(secretFile, []byte("file-secret-token\n"), 0o600)
	wasm, err := os.ReadFile("../../examples/hello-wat/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, attr, secret string }{
		{"token_env", `token_env = "FERRY_PASSWORD"`, password},
		{"token_file", `token_file = "` + secretFile + `"`, "file-secret-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newBearerSink(t)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "hello.wasm"), wasm, 0o644)
			os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(`app "hello" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
  }
}

target "evil" {
  type     = "host"
  apps     = ["hello"]
  endpoint = "`+sink.URL+`"
  `+tc.attr+`
}
`), 0o644)
			code, out, errs := ferry(t, "destroy", "-auto-approve", dir)
			if sink.saw(tc.secret) {
				t.Fatalf("the endpoint named by the spec received the agent's secret as a bearer token (exit %d)", code)
			}
			if code == exitOK {
				t.Fatalf("destroy with %s succeeded:\n%s%s", tc.attr, out, errs)
			}
			if !strings.Contains(errs, tc.name) || !strings.Contains(errs, "credential") {
				t.Errorf("the diagnostic does not explain the move of %s to a credential:\n%s", tc.name, errs)
			}
			if strings.Contains(out+errs, tc.secret) {
				t.Errorf("output shows the secret:\n%s%s", out, errs)
			}
		})
	}
}

// TestCredentialBoundToEndpoints: a host target names the operator's
// credential; ferry sends its token only to the endpoints the credentials
// file allows it for, so a commit that re-points the endpoint gets nothing.
func TestCredentialBoundToEndpoints(t *testing.T) {
	const token = "operator-host-token-42"
	t.Setenv("PROD_HOST_TOKEN", token)
	t.Setenv("FERRY_HOST_TOKEN", "by-hand-default-token")
	wasm, err := os.ReadFile("../../examples/hello-wat/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	good, evil := newBearerSink(t), newBearerSink(t)
	creds := filepath.Join(t.TempDir(), "credentials.hcl")
	os.WriteFile(creds, []byte(`credential "prod" {
  endpoints = ["`+good.URL+`"]
  token_env = "PROD_HOST_TOKEN"
}
`), 0o600)
	specDir := func(endpoint string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "hello.wasm"), wasm, 0o644)
		os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(`app "hello" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
  }
}

target "prod" {
  type       = "host"
  apps       = ["hello"]
  endpoint   = "`+endpoint+`"
  credential = "prod"
}
`), 0o644)
		return dir
	}
	// The allowed endpoint gets the operator's token (the sink answers 500,
	// so the command fails after asking).
	ferry(t, "destroy", "-auto-approve", "--credentials", creds, specDir(good.URL))
	if !good.saw("Bearer " + token) {
		t.Fatalf("the allowed endpoint did not get the credential's token: %q", good.seen)
	}
	// A commit re-points the target: refused before any request.
	code, out, errs := ferry(t, "destroy", "-auto-approve", "--credentials", creds, specDir(evil.URL))
	if evil.saw(token) || len(evil.seen) > 0 {
		t.Fatalf("the endpoint the commit chose was contacted: %q", evil.seen)
	}
	if code == exitOK || !strings.Contains(errs, `credential "prod" may not be sent to `+evil.URL) {
		t.Fatalf("exit %d; want a refusal naming the endpoint:\n%s%s", code, out, errs)
	}
	// Without the credentials file the name means nothing.
	code, _, errs = ferry(t, "destroy", "-auto-approve", specDir(good.URL))
	if code == exitOK || !strings.Contains(errs, "--credentials") {
		t.Fatalf("exit %d without --credentials:\n%s", code, errs)
	}
}

// TestAgentSendsNoDefaultToken: the agent's targets get no token for a
// host target that names no credential, even with FERRY_HOST_TOKEN in its
// environment (that default is for commands run by hand only).
func TestAgentSendsNoDefaultToken(t *testing.T) {
	t.Setenv("FERRY_HOST_TOKEN", "agent-env-host-token")
	sink := newBearerSink(t)
	cfg := &spec.Config{Targets: []*spec.Target{{Name: "t", Type: spec.TargetHost, Apps: []string{"a"},
		Host: &spec.HostTarget{Endpoints: []string{sink.URL}}}}}
	ct := &cachedTargets{log: slog.New(slog.DiscardHandler), opts: targetOptions{DefaultToken: "set-by-mistake"}}
	tgts, err := ct.targets(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tgts["t"].Observe(context.Background()) //nolint:errcheck // the sink answers 500
	if len(sink.seen) == 0 {
		t.Fatal("the target was never asked")
	}
	for _, h := range sink.seen {
		if strings.TrimSpace(strings.TrimPrefix(h, "Bearer")) != "" {
			t.Fatalf("the agent sent Authorization %q to a target without a credential", h)
		}
	}
}

// TestValidateDoesNotPrintOutsideFiles: `ln -s /proc/self/environ
// leak.hcl` made ferry validate print the environment in the error's
// source snippet. A spec file that leads outside the spec directory is
// refused with a diagnostic that shows nothing of it.
func TestValidateDoesNotPrintOutsideFiles(t *testing.T) {
	const secret = "FERRY_PASSWORD=leaked-signing-password"
	outside := filepath.Join(t.TempDir(), "secret.env")
	os.WriteFile(outside, []byte(secret+"\n"), 0o600)
	path := os.Getenv("PATH") // in this process's initial environment
	for _, tc := range []struct{ name, target, value string }{
		{"outside file", outside, "leaked-signing-password"},
		{"/proc/self/environ", "/proc/self/environ", path},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte("app \"a\" {\n  component \"w\" {\n    wasm = \"./a.wasm\"\n  }\n}\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "a.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
			if err := os.Symlink(tc.target, filepath.Join(dir, "leak.hcl")); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"validate", dir}, {"validate", "-o", "json", dir}} {
				code, out, errs := ferry(t, args...)
				if strings.Contains(out+errs, tc.value) {
					t.Fatalf("%v printed the outside file:\n%s%s", args, out, errs)
				}
				if code != exitError || !strings.Contains(out+errs, "leak.hcl") || !strings.Contains(out+errs, "outside the spec directory") {
					t.Fatalf("%v: exit %d, want a refusal naming leak.hcl:\n%s%s", args, code, out, errs)
				}
			}
		})
	}
}
