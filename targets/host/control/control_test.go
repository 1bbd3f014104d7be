package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestPutVerifyServe walks one app through the control API against a real
// registry, real signatures and the real runtime: every refusal leaves the
// version before serving.
func TestPutVerifyServe(t *testing.T) {
	trusted, other := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	const host = "hello.test"

	v1 := w.push("apps/hello", helloApp("hello"), helloWasm(t))
	w.sign(v1, trusted)
	v2 := w.push("apps/hello", helloApp("hello"), variant(t, "Hallo"))
	v3 := w.push("apps/hello", helloApp("hello"), variant(t, "Hullo"))

	ai, err := w.client.PutApp(ctx, "hello", api.PutRequest{Ref: v1})
	if err != nil {
		t.Fatalf("put v1: %v", err)
	}
	if ai.Digest != digestOf(v1) || ai.Status != api.StatusServing || !ai.Healthy || ai.VerifiedBy != "key0" {
		t.Fatalf("put v1 answered %+v", ai)
	}
	w.wantServes(host, "Hello from WAT")

	// Every refusal, with the status, sentinel and words it must carry.
	refusals := []struct {
		name     string
		setup    func() api.PutRequest
		status   int
		sentinel error
		words    string
	}{
		{"unsigned", func() api.PutRequest { return api.PutRequest{Ref: v2} }, 403, targets.ErrVerification, "no signatures"},
		{"signed by an untrusted key", func() api.PutRequest {
			w.sign(v2, other)
			return api.PutRequest{Ref: v2}
		}, 403, targets.ErrVerification, "no signature matches"},
		{"malformed module", func() api.PutRequest {
			ref := w.push("apps/hello", helloApp("hello"), []byte("\x00asm\x01\x00\x00\x00garbage"))
			w.sign(ref, trusted)
			return api.PutRequest{Ref: ref}
		}, 422, targets.ErrUnhealthy, "malformed"},
		{"artifact of another app", func() api.PutRequest {
			ref := w.push("apps/other", helloApp("other"), helloWasm(t))
			w.sign(ref, trusted)
			return api.PutRequest{Ref: ref}
		}, 422, targets.ErrUnhealthy, `holds app "other"`},
		{"failing health probe", func() api.PutRequest {
			app := helloApp("hello")
			app.Components[0].Routes = []string{"/only"}
			app.Components[0].Health = &deploy.Health{Path: "/elsewhere"}
			ref := w.push("apps/hello", app, variant(t, "Hxllo"))
			w.sign(ref, trusted)
			return api.PutRequest{Ref: ref}
		}, 422, targets.ErrUnhealthy, "health"},
		{"guest traps on its health probe", func() api.PutRequest {
			trap, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "trap.wasm"))
			if err != nil {
				t.Fatal(err)
			}
			ref := w.push("apps/hello", helloApp("hello"), trap)
			w.sign(ref, trusted)
			return api.PutRequest{Ref: ref}
		}, 422, targets.ErrUnhealthy, "health check failed"},
		{"tag instead of digest", func() api.PutRequest {
			return api.PutRequest{Ref: w.regAddr + "/apps/hello:latest"}
		}, 400, driver.ErrBadRequest, "by digest only"},
		{"digest disagreeing with ref", func() api.PutRequest {
			return api.PutRequest{Ref: v1, Digest: digestOf(v3)}
		}, 400, driver.ErrBadRequest, "disagree"},
		{"digest absent from registry", func() api.PutRequest {
			return api.PutRequest{Ref: w.regAddr + "/apps/hello@sha256:" + strings.Repeat("ab", 32)}
		}, 404, driver.ErrArtifactNotFound, "not found"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.client.PutApp(ctx, "hello", tc.setup())
			t.Logf("refused: %v", err)
			var ae *driver.APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("err = %v, want %d wrapping %v and saying %q", err, tc.status, tc.sentinel, tc.words)
			}
			w.wantServes(host, "Hello from WAT")
			ai, err := w.client.App(ctx, "hello")
			if err != nil || ai.Digest != digestOf(v1) {
				t.Fatalf("after refusal: %+v, %v; want digest %s", ai, err, digestOf(v1))
			}
		})
	}

	t.Run("bad token", func(t *testing.T) {
		bad, err := driver.NewClient(w.ctl.URL, "wrong", driver.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.sign(v3, trusted)
		_, err = bad.Put(ctx, targets.DesiredApp{Name: "hello", Ref: v3, Digest: digestOf(v3)})
		if !errors.Is(err, driver.ErrUnauthorized) {
			t.Fatalf("put with a wrong token: %v, want ErrUnauthorized", err)
		}
		for _, auth := range []string{"", "Bearer", "Bearer ", "Basic " + testToken, "bearer " + testToken, "Bearer " + testToken + "x"} {
			req, _ := http.NewRequest(http.MethodGet, w.ctl.URL+"/v1/apps", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %q: %d, want 401", auth, resp.StatusCode)
			}
		}
		if strings.Contains(w.logs.String(), testToken) {
			t.Error("the token appears in the logs")
		}
		w.wantServes(host, "Hello from WAT")
	})

	t.Run("update and rollback", func(t *testing.T) {
		w.sign(v2, trusted) // now signed by both keys
		if _, err := w.client.Put(ctx, targets.DesiredApp{Name: "hello", Ref: v2, Digest: digestOf(v2)}); err != nil {
			t.Fatalf("put v2: %v", err)
		}
		w.wantServes(host, "Hallo from WAT")
		ai, _ := w.client.App(ctx, "hello")
		if ai.Digest != digestOf(v2) || ai.Previous != digestOf(v1) {
			t.Fatalf("after v2: %+v", ai)
		}
		if err := w.client.RollBack(ctx, "hello"); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		w.wantServes(host, "Hello from WAT")
		ai, _ = w.client.App(ctx, "hello")
		if ai.Digest != digestOf(v1) || ai.Previous != digestOf(v2) {
			t.Fatalf("after rollback: %+v", ai)
		}
		// Back to v2 again by PUT: it is in the state directory, so no
		// registry round trip is needed, but its signature is re-checked.
		if _, err := w.client.Put(ctx, targets.DesiredApp{Name: "hello", Ref: v2, Digest: digestOf(v2)}); err != nil {
			t.Fatalf("put v2 again: %v", err)
		}
		w.wantServes(host, "Hallo from WAT")
	})

	t.Run("registry down", func(t *testing.T) {
		if err := w.reg.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := w.client.Put(ctx, targets.DesiredApp{Name: "hello", Ref: v3, Digest: digestOf(v3)})
		var ae *driver.APIError
		if !errors.Is(err, targets.ErrUnavailable) || !errors.As(err, &ae) || ae.StatusCode != http.StatusBadGateway {
			t.Fatalf("put with the registry down: %v, want 502 ErrUnavailable", err)
		}
		w.wantServes(host, "Hallo from WAT")
	})

	t.Run("observe", func(t *testing.T) {
		got, err := w.client.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []targets.ObservedApp{{Name: "hello", Ref: v2, Digest: digestOf(v2), Managed: true, Status: "serving",
			Healthy: true, Phase: targets.PhaseReady, Previous: digestOf(v1), SecretHashes: map[string]string{}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Observe (-want +got):\n%s", diff)
		}
		// One app by name (targets.AppObserver) is what the listing says.
		one, err := w.client.ObserveApp(ctx, "hello")
		if err != nil || one == nil {
			t.Fatalf("ObserveApp(hello) = %v, %v", one, err)
		}
		if diff := cmp.Diff(want[0], *one); diff != "" {
			t.Fatalf("ObserveApp (-want +got):\n%s", diff)
		}
		if none, err := w.client.ObserveApp(ctx, "no-such-app"); none != nil || err != nil {
			t.Fatalf("ObserveApp of an app the host does not run = %+v, %v; want nil, nil", none, err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, w.ctl.URL+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/metrics without token: %d", resp.StatusCode)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{`ferry_host_control_puts_total{result="verification_failed"} 2`, `ferry_host_control_puts_total{result="ok"}`,
			"ferry_host_requests_total", "ferry_host_control_requests_total"} {
			if !strings.Contains(string(b), m) {
				t.Errorf("/metrics lacks %s", m)
			}
		}
		resp, err = http.Get(w.ctl.URL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	t.Run("delete", func(t *testing.T) {
		if err := w.client.Delete(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		if code, _ := w.get(host, "/"); code != http.StatusNotFound {
			t.Fatalf("deleted app answers %d", code)
		}
		if err := w.client.Delete(ctx, "hello"); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
		if _, err := w.client.App(ctx, "hello"); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("GET deleted app: %v", err)
		}
		if err := w.client.RollBack(ctx, "hello"); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("rollback of deleted app: %v", err)
		}
		got, err := w.client.Observe(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("Observe after delete: %v %v", got, err)
		}
	})
}

// TestRollbackWithoutPrevious: a first version has nothing to go back to.
func TestRollbackWithoutPrevious(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ref := w.push("apps/one", helloApp("one"), helloWasm(t))
	w.sign(ref, trusted)
	ctx := context.Background()
	if _, err := w.client.PutApp(ctx, "one", api.PutRequest{Ref: ref}); err != nil {
		t.Fatal(err)
	}
	if err := w.client.RollBack(ctx, "one"); !errors.Is(err, driver.ErrNoPrevious) {
		t.Fatalf("rollback: %v, want ErrNoPrevious", err)
	}
	w.wantServes("one.test", "Hello")
}

// TestBadRequests covers malformed bodies and names.
func TestBadRequests(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/v1/apps/x", `{"ref":`, 400},
		{"PUT", "/v1/apps/x", `{"ref":"a/b@sha256:00","extra":1}`, 400},
		{"PUT", "/v1/apps/x", ``, 400},
		{"PUT", "/v1/apps/x", `{"ref":"not a ref"}`, 400},
		{"PUT", "/v1/apps/.hidden", `{"ref":"127.0.0.1:1/a@sha256:` + strings.Repeat("0", 64) + `"}`, 400},
		{"PUT", "/v1/apps/x", `{"ref":"` + strings.Repeat("a", 2<<20) + `"}`, 400},
		{"PATCH", "/v1/apps/x", `{}`, 405},
		{"GET", "/v2/apps", ``, 404},
		{"GET", "/v1/apps/missing", ``, 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path+" "+tc.body[:min(len(tc.body), 30)], func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, w.ctl.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.status)
			}
		})
	}
}

// TestSecretsNeverLogged deploys an app with a secret and checks that the
// value reaches the guest's configuration but no log line and no answer.
func TestSecretsNeverLogged(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	app := helloApp("sec")
	app.Variables = map[string]deploy.Variable{"api_key": {Secret: true}}
	app.Components[0].Variables = map[string]string{"key": "{{ api_key }}"}
	ref := w.push("apps/sec", app, helloWasm(t))
	w.sign(ref, trusted)
	ctx := context.Background()
	// Without the secret, the runtime refuses the app.
	if _, err := w.client.PutApp(ctx, "sec", api.PutRequest{Ref: ref}); !errors.Is(err, targets.ErrUnhealthy) {
		t.Fatalf("put without secret: %v, want ErrUnhealthy", err)
	}
	const secret = "very-secret-value-42"
	ai, err := w.client.PutApp(ctx, "sec", api.PutRequest{Ref: ref, Secrets: map[string]string{"api_key": secret}})
	if err != nil {
		t.Fatal(err)
	}
	w.wantServes("sec.test", "Hello")
	if strings.Contains(w.logs.String(), secret) {
		t.Error("secret value in the logs")
	}
	if b, _ := json.Marshal(ai); strings.Contains(string(b), secret) {
		t.Error("secret value in the answer")
	}
}
