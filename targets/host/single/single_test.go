package single_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/faultproxy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/single"
)

// keyPair is a fresh cosign key pair: the private key and the public key
// written to a file for the trust policy.
func keyPair(t *testing.T) (*signer.PrivateKey, string) {
	t.Helper()
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(p, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, p
}

func helloApp(t *testing.T, name string) (deploy.App, string) {
	return deploy.App{Name: name, Hosts: []string{name + ".localhost"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Limits: deploy.Limits{MemoryBytes: 1 << 20, Timeout: deploy.Duration(2 * time.Second)},
			Health: &deploy.Health{Path: "/healthz"},
		}}}, filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm")
}

// varApp is the varecho guest (it answers with its component variable
// "key") with key = "{{ greeting }}/{{ api_key }}": greeting is a plain
// variable (default "hello"), api_key a secret one.
func varApp(name string) (deploy.App, string) {
	def := "hello"
	return deploy.App{Name: name,
		Variables: map[string]deploy.Variable{"greeting": {Default: &def}, "api_key": {Secret: true}},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Variables: map[string]string{"key": "{{ greeting }}/{{ api_key }}"},
		}}}, filepath.Join("testdata", "varecho.wasm")
}

// push pushes app with the module at wasmPath to reg and, when key is not
// nil, signs it; it returns REPO@DIGEST.
func push(t *testing.T, reg string, app deploy.App, wasmPath string, key *signer.PrivateKey) string {
	t.Helper()
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rc.PushApp(context.Background(), reg+"/apps/"+app.Name, app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if _, err := signer.Sign(context.Background(), res.Ref, key, signer.SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return res.Ref
}

type running struct {
	a       *single.App
	app     *httptest.Server
	health  *httptest.Server
	stopped chan struct{}
	stop    func() // stops it (once; also at the test's end)
}

// start runs a single-app host for ref trusting trustKey, serving the app
// and the health endpoints on loopback, until the test ends.
func start(t *testing.T, ref, trustKey string, edit func(*single.Options)) *running {
	t.Helper()
	return startIn(t, t.TempDir(), ref, trustKey, edit)
}

// startIn is start with the host's directories under dir.
func startIn(t *testing.T, dir, ref, trustKey string, edit func(*single.Options)) *running {
	t.Helper()
	policy, err := single.PolicyFromPaths([]string{trustKey})
	if err != nil {
		t.Fatal(err)
	}
	opts := single.Options{
		Ref: ref,
		Core: core.Config{
			Runtime:  host.Options{StateDir: dir, Logger: slog.New(slog.DiscardHandler)},
			StoreDir: filepath.Join(dir, "state"),
			Registry: registry.Options{CacheDir: filepath.Join(dir, "oci"), NoDockerConfig: true},
			Policy:   policy,
		},
		RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		ReloadInterval: 200 * time.Millisecond,
	}
	if edit != nil {
		edit(&opts)
	}
	a, err := single.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, app: httptest.NewServer(a), health: httptest.NewServer(a.HealthHandler()), stopped: make(chan struct{})}
	go func() { defer close(r.stopped); a.Run(ctx) }() //nolint:errcheck // nil when ctx ends
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			<-r.stopped
			r.app.Close()
			r.health.Close()
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer ccancel()
			if err := a.Close(cctx); err != nil {
				t.Errorf("closing: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

func get(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls f every 20 ms until it returns true or within passes.
func waitFor(t *testing.T, within time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, within, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *running) waitReady(t *testing.T, within time.Duration) string {
	t.Helper()
	var body string
	waitFor(t, within, "/readyz 200", func() (bool, string) {
		var code int
		code, body = get(t, r.health.URL+"/readyz", "")
		return code == 200, strconv.Itoa(code) + " " + body
	})
	return body
}

// metric returns the value of the sample line starting with name (with
// labels, as exposed), or -1.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics", "")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestSignedArtifactServes: a signed artifact becomes ready, answers on
// the app listener under any Host header, and the metrics say so.
func TestSignedArtifactServes(t *testing.T) {
	reg := testenv.Registry(t)
	key, pub := keyPair(t)
	app, wasm := helloApp(t, "hello")
	ref := push(t, reg, app, wasm, key)
	r := start(t, ref, pub, nil)

	if code, body := get(t, r.health.URL+"/livez", ""); code != 200 {
		t.Fatalf("/livez = %d %q", code, body)
	}
	body := r.waitReady(t, 30*time.Second)
	_, dgst, _ := strings.Cut(ref, "@")
	if want := "ready: hello serves " + dgst + "\n"; body != want {
		t.Fatalf("/readyz body %q, want %q", body, want)
	}
	for _, h := range []string{"hello.localhost", "hello.default.svc.cluster.local", ""} {
		if code, body := get(t, r.app.URL+"/", h); code != 200 || !strings.Contains(body, "Hello from WAT on ferry!") {
			t.Fatalf("GET / (Host %q) = %d %q", h, code, body)
		}
	}
	if v := metric(t, r.health.URL, "ferry_host_app_ready"); v != 1 {
		t.Fatalf("ferry_host_app_ready = %v, want 1", v)
	}
	if v := metric(t, r.health.URL, `ferry_host_app_put_attempts_total{result="ok"}`); v != 1 {
		t.Fatalf(`put attempts ok = %v, want 1`, v)
	}
	ai, err := r.a.Core().Get("hello")
	if err != nil || ai.VerifiedBy != pub {
		t.Fatalf("core says %+v, %v; want verified by %s", ai, err, pub)
	}
}

// TestUntrustedNeverServes: an unsigned artifact, or one signed by a key
// the host does not trust, never becomes ready: /readyz stays 503 with a
// reason starting "signature: " while the host keeps retrying, and the
// app listener never serves it.
func TestUntrustedNeverServes(t *testing.T) {
	reg := testenv.Registry(t)
	_, trusted := keyPair(t)
	other, _ := keyPair(t)
	for _, tc := range []struct {
		name string
		key  *signer.PrivateKey
		want string
	}{
		{"unsigned", nil, "unsigned"},
		{"wrong-key", other, "no signature matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, wasm := helloApp(t, "hello-"+tc.name)
			ref := push(t, reg, app, wasm, tc.key)
			r := start(t, ref, trusted, nil)
			label := `ferry_host_app_put_attempts_total{result="signature"}`
			waitFor(t, 30*time.Second, "three refused attempts", func() (bool, string) {
				v := metric(t, r.health.URL, label)
				return v >= 3, strconv.FormatFloat(v, 'f', -1, 64)
			})
			code, body := get(t, r.health.URL+"/readyz", "")
			if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "signature: ") || !strings.Contains(body, tc.want) ||
				strings.Count(body, "\n") != 1 {
				t.Fatalf("/readyz = %d %q, want 503 with one line \"signature: ...%s...\"", code, body, tc.want)
			}
			for _, h := range []string{app.Name + ".localhost", ""} {
				if code, body := get(t, r.app.URL+"/", h); code != http.StatusServiceUnavailable || strings.Contains(body, "Hello") {
					t.Fatalf("the app listener answered %d %q for an artifact that did not verify", code, body)
				}
			}
			if v := metric(t, r.health.URL, "ferry_host_app_ready"); v != 0 {
				t.Fatalf("ferry_host_app_ready = %v, want 0", v)
			}
			if _, err := r.a.Core().Get(app.Name); err == nil {
				t.Fatal("the core holds the app")
			}
		})
	}
}

// TestRegistryDownAtStart: the registry is unreachable when the host
// starts; it reports why, retries with backoff, and becomes ready once the
// registry answers, without a restart.
func TestRegistryDownAtStart(t *testing.T) {
	reg := testenv.Registry(t)
	key, pub := keyPair(t)
	app, wasm := helloApp(t, "late")
	ref := push(t, reg, app, wasm, key)
	p, err := faultproxy.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.Down()
	viaProxy := p.Addr() + strings.TrimPrefix(ref, reg)
	r := start(t, viaProxy, pub, nil)

	label := `ferry_host_app_put_attempts_total{result="registry"}`
	waitFor(t, 30*time.Second, "two failed attempts", func() (bool, string) {
		v := metric(t, r.health.URL, label)
		return v >= 2, strconv.FormatFloat(v, 'f', -1, 64)
	})
	if code, body := get(t, r.health.URL+"/readyz", ""); code != 503 || !strings.HasPrefix(body, "registry: ") {
		t.Fatalf("/readyz with the registry down = %d %q, want 503 \"registry: ...\"", code, body)
	}
	if code, _ := get(t, r.app.URL+"/", ""); code != 503 {
		t.Fatalf("app listener = %d before deploy, want 503", code)
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	r.waitReady(t, 30*time.Second)
	if code, body := get(t, r.app.URL+"/", ""); code != 200 || !strings.Contains(body, "Hello from WAT on ferry!") {
		t.Fatalf("GET / = %d %q", code, body)
	}
}

// writeKubeDir writes values into dir the way the kubelet updates a
// mounted ConfigMap or Secret: the files live in a fresh timestamped
// directory, "..data" links to it (swapped atomically by rename), and each
// name links to "..data/NAME" (links of names no longer there are removed).
func writeKubeDir(t *testing.T, dir string, values map[string]string) {
	t.Helper()
	ts, err := os.MkdirTemp(dir, "..2026_")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		if err := os.WriteFile(filepath.Join(ts, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, k)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if _, keep := values[e.Name()]; !keep && !strings.HasPrefix(e.Name(), "..") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestConfigAndSecretsReload: values come from the mounted config and
// secrets directories; a change to either reaches the running guest
// within the reload interval, in place (no new version, nothing kept for
// rollback), and a secret named in the config directory is ignored.
func TestConfigAndSecretsReload(t *testing.T) {
	reg := testenv.Registry(t)
	key, pub := keyPair(t)
	app, wasm := varApp("vars")
	ref := push(t, reg, app, wasm, key)
	cfgDir, secDir := t.TempDir(), t.TempDir()
	writeKubeDir(t, cfgDir, map[string]string{"greeting": "hi", "api_key": "from-configmap", "undeclared": "x"})
	writeKubeDir(t, secDir, map[string]string{"api_key": "s3cret-1"})
	r := start(t, ref, pub, func(o *single.Options) { o.ConfigDir, o.SecretsDir = cfgDir, secDir })
	r.waitReady(t, 30*time.Second)
	first, err := r.a.Core().Get("vars")
	if err != nil {
		t.Fatal(err)
	}

	answers := func(want string) {
		t.Helper()
		waitFor(t, 10*time.Second, "the guest answering "+want, func() (bool, string) {
			code, body := get(t, r.app.URL+"/", "")
			return code == 200 && body == want, strconv.Itoa(code) + " " + body
		})
	}
	answers("hi/s3cret-1")
	// Two clients keep asking while the values change: every answer is a
	// 200 with one of the value sets, never an error or a mix.
	allowed := map[string]bool{"hi/s3cret-1": true, "hey/s3cret-1": true, "hey/s3cret-2": true, "hello/s3cret-2": true}
	stopProbe := make(chan struct{})
	probeDone := make(chan []string, 2)
	for range 2 {
		go func() {
			var bad []string
			n := 0
			for {
				select {
				case <-stopProbe:
					probeDone <- append(bad, "count:"+strconv.Itoa(n))
					return
				default:
				}
				resp, err := http.Get(r.app.URL + "/")
				if err != nil {
					bad = append(bad, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !allowed[string(b)] {
					bad = append(bad, strconv.Itoa(resp.StatusCode)+" "+string(b))
				}
				n++
			}
		}()
	}
	writeKubeDir(t, cfgDir, map[string]string{"greeting": "hey", "api_key": "from-configmap"})
	answers("hey/s3cret-1")
	writeKubeDir(t, secDir, map[string]string{"api_key": "s3cret-2"})
	answers("hey/s3cret-2")
	// A deleted value falls back to the variable's default.
	if err := os.Remove(filepath.Join(cfgDir, "greeting")); err != nil {
		t.Fatal(err)
	}
	answers("hello/s3cret-2")
	close(stopProbe)
	for range 2 {
		res := <-probeDone
		if len(res) != 1 || res[0] == "count:0" {
			t.Fatalf("a client during the reloads saw: %v", res)
		}
	}

	ai, err := r.a.Core().Get("vars")
	if err != nil {
		t.Fatal(err)
	}
	if ai.Digest != first.Digest || ai.Previous != "" || !ai.DeployedAt.Equal(first.DeployedAt) {
		t.Fatalf("after reloads the app is %s (previous %q, deployed %v); want the same version reconfigured in place (%s, deployed %v)",
			ai.Digest, ai.Previous, ai.DeployedAt, first.Digest, first.DeployedAt)
	}
	waitFor(t, 5*time.Second, "4 successful puts (deploy + 3 changes)", func() (bool, string) {
		v := metric(t, r.health.URL, `ferry_host_app_put_attempts_total{result="ok"}`)
		return v == 4, strconv.FormatFloat(v, 'f', -1, 64)
	})
	time.Sleep(500 * time.Millisecond) // two more reload rounds: nothing changed, nothing put
	if v := metric(t, r.health.URL, `ferry_host_app_put_attempts_total{result="ok"}`); v != 4 {
		t.Fatalf("successful puts = %v after unchanged rounds, want still 4", v)
	}
	r.waitReady(t, time.Second)
}

// TestTrustKeyDirectory: a directory given as --trust-key is every *.pub
// file in it (a mounted Secret); one without any is refused.
func TestTrustKeyDirectory(t *testing.T) {
	dir := t.TempDir()
	_, a := keyPair(t)
	_, b := keyPair(t)
	for i, src := range []string{a, b} {
		pem, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(dir, "k"+strconv.Itoa(i)+".pub"), pem, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a key"), 0o644)
	p, err := single.PolicyFromPaths([]string{dir})
	if err != nil || len(p.Keys) != 2 {
		t.Fatalf("PolicyFromPaths(dir) = %d keys, %v; want 2", len(p.Keys), err)
	}
	if _, err := single.PolicyFromPaths([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no *.pub") {
		t.Fatalf("empty directory: %v", err)
	}
}

// TestRefByDigestOnly: a tag, or no digest, is refused before anything
// starts.
func TestRefByDigestOnly(t *testing.T) {
	for _, ref := range []string{"127.0.0.1:5000/apps/x:latest", "127.0.0.1:5000/apps/x", "not a ref"} {
		_, err := single.New(single.Options{Ref: ref, Core: core.Config{StoreDir: t.TempDir()}})
		if err == nil || !strings.Contains(err.Error(), "invalid --ref") {
			t.Errorf("New(%q) = %v, want invalid --ref", ref, err)
		}
	}
}

// TestRestartWithRegistryDown: a process restarted on the same state
// directory (a pod's emptyDir outlives its container) serves its app again
// while the registry is unreachable: the name and the verified version come
// from the state directory, whose signature is re-verified locally.
func TestRestartWithRegistryDown(t *testing.T) {
	reg := testenv.Registry(t)
	key, pub := keyPair(t)
	app, wasm := helloApp(t, "again")
	ref := push(t, reg, app, wasm, key)
	p, err := faultproxy.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	viaProxy := p.Addr() + strings.TrimPrefix(ref, reg)
	dir := t.TempDir()
	first := startIn(t, dir, viaProxy, pub, nil)
	first.waitReady(t, 30*time.Second)
	first.stop()

	p.Down()
	r := startIn(t, dir, viaProxy, pub, nil)
	r.waitReady(t, 30*time.Second)
	if code, body := get(t, r.app.URL+"/", ""); code != 200 || !strings.Contains(body, "Hello from WAT on ferry!") {
		t.Fatalf("GET / after a restart with the registry down = %d %q", code, body)
	}
	if n := p.Accepted(); n == 0 {
		t.Fatal("the restarted host never tried the registry")
	}
}

// TestUnhealthyAppNotReady: an app that passes its deploy probe and then
// fails its own health probe (the flaky-health reactor) turns /readyz to
// 503 "unhealthy: ..." naming the component, while /livez stays 200 (a
// failing app is not a dead process).
func TestUnhealthyAppNotReady(t *testing.T) {
	reg := testenv.Registry(t)
	key, pub := keyPair(t)
	app := deploy.App{Name: "flaky", Components: []deploy.Component{{
		Name: "web", Executor: deploy.ExecutorReactor, Routes: []string{"/..."},
		Limits: deploy.Limits{MaxConcurrency: 1},
		Health: &deploy.Health{Path: "/healthz", Interval: deploy.Duration(50 * time.Millisecond),
			Timeout: deploy.Duration(2 * time.Second), FailureThreshold: 2},
	}}}
	ref := push(t, reg, app, filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "flaky-health.wasm"), key)
	r := start(t, ref, pub, nil)
	waitFor(t, 30*time.Second, "/readyz 503 unhealthy", func() (bool, string) {
		code, body := get(t, r.health.URL+"/readyz", "")
		return code == 503 && strings.HasPrefix(body, "unhealthy: component web: "), strconv.Itoa(code) + " " + body
	})
	if code, _ := get(t, r.health.URL+"/livez", ""); code != 200 {
		t.Fatalf("/livez = %d while the app is unhealthy, want 200", code)
	}
	if v := metric(t, r.health.URL, "ferry_host_app_ready"); v != 0 {
		t.Fatalf("ferry_host_app_ready = %v, want 0", v)
	}
}
