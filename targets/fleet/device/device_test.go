package device_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/devicetest"
	"github.com/ferry-wasm/ferry/internal/faultproxy"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
	"github.com/ferry-wasm/ferry/targets/fleet/device"
)

// world is a real registry holding real signed artifacts, a trusted key
// and a rogue one.
type world struct {
	t       *testing.T
	reg     *embedded.Server
	regAddr string // a counting proxy in front of reg: artifacts are pushed and pulled through it

	mu       sync.Mutex
	blobGets map[string]int // GETs of each blob digest through regAddr
	rc       *registry.Client
	trusted  signer.Key
	priv     *signer.PrivateKey
	rogue    *signer.PrivateKey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	reg, err := embedded.NewServer(context.Background(), embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	k, priv := hosttest.SecretKeys(t)
	_, rogue := hosttest.SecretKeys(t)
	w := &world{t: t, reg: reg, rc: rc, trusted: k, priv: priv, rogue: rogue, blobGets: map[string]int{}}
	up, _ := url.Parse("http://" + reg.Addr())
	rp := httputil.NewSingleHostReverseProxy(up)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if _, d, ok := strings.Cut(r.URL.Path, "/blobs/"); ok && r.Method == http.MethodGet {
			w.mu.Lock()
			w.blobGets[d]++
			w.mu.Unlock()
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(proxy.Close)
	w.regAddr = strings.TrimPrefix(proxy.URL, "http://")
	return w
}

// blobFetches says how often the blob of content b was downloaded.
func (w *world) blobFetches(b []byte) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.blobGets[fmt.Sprintf("sha256:%x", sha256.Sum256(b))]
}

// fixture reads a committed Wasm fixture, relative to the repository root.
func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	helloWAT  = "examples/hello-wat/hello.wasm" // "Hello from WAT on ferry!\n" on every path
	helloHost = "targets/host/testdata/hello.wasm"
	trapWasm  = "targets/host/testdata/trap.wasm" // traps: its health probe fails
	helloV1   = "Hello from WAT on ferry!\n"
	helloV2   = "hello\n"
	appName   = "web"
)

// push pushes wasm as app "web" (a WAGI component with a health path and a
// secret variable; note changes the config, so the digest) and signs it
// with key; it returns the desired app.
func (w *world) push(wasm []byte, note string, key *signer.PrivateKey) api.DesiredApp {
	w.t.Helper()
	app := deploy.App{
		Name:      appName,
		Hosts:     []string{appName + ".localhost"},
		Variables: map[string]deploy.Variable{"api_key": {Secret: true}},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Limits:    deploy.Limits{MemoryBytes: 1 << 20, Timeout: deploy.Duration(2 * time.Second)},
			Health:    &deploy.Health{Path: "/healthz"},
			Variables: map[string]string{"api_key": "{{ api_key }}", "note": note},
		}},
	}
	d := w.pushApp(app, wasm, key)
	d.Values = map[string]string{"api_key": secretValue}
	return d
}

// pushApp pushes app with wasm as its component "web", signs it with key
// and returns the desired app.
func (w *world) pushApp(app deploy.App, wasm []byte, key *signer.PrivateKey) api.DesiredApp {
	w.t.Helper()
	res, err := w.rc.PushApp(context.Background(), w.regAddr+"/apps/"+app.Name, app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := signer.Sign(context.Background(), res.Ref, key, signer.SignOptions{}); err != nil {
		w.t.Fatal(err)
	}
	return api.DesiredApp{Name: app.Name, Ref: res.Ref, Digest: res.Digest.String(), Owner: "git:test//fleet#edge"}
}

const (
	secretValue = "value-that-must-never-be-logged-7731"
	enrollToken = "fet_enroll-token-never-logged-4410"
)

// logBuf collects log output from several goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startDevice starts a device-mode host on dir talking to serverURL.
func (w *world) startDevice(t *testing.T, serverURL, dir string, logs io.Writer) *device.Host {
	t.Helper()
	h, err := device.Start(context.Background(), device.Config{
		Device: device.Options{
			Server: serverURL, EnrollToken: enrollToken, Labels: map[string]string{"site": "lab"},
			Version: "test", Wait: 2 * time.Second, CheckEvery: 50 * time.Millisecond,
			Backoff: device.Backoff{Min: 50 * time.Millisecond, Max: 400 * time.Millisecond},
		},
		DataDir: dir,
		Listen:  "127.0.0.1:0",
		Policy:  signer.Policy{Keys: []signer.Key{w.trusted}},
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) }) //nolint:errcheck // closing twice is fine
	return h
}

// get fetches path of app "web" from the device's app listener.
func get(t *testing.T, h *device.Host) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.Addr().String()+"/", nil)
	req.Host = appName + ".localhost"
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantServes(t *testing.T, h *device.Host, body string) {
	t.Helper()
	if code, got := get(t, h); code != 200 || got != body {
		t.Fatalf("the device serves %d %q, want 200 %q", code, got, body)
	}
}

func appStatus(r api.StatusReport) api.AppStatus {
	for _, a := range r.Apps {
		if a.Name == appName {
			return a
		}
	}
	return api.AppStatus{}
}

// TestDeviceLifecycle is one device's life against the protocol server:
// it enrolls, serves v1, rolls out v2, refuses v3 (fails its health probe)
// and v4 (signed by an untrusted key) — reported Failed and rolled back,
// v2 serving throughout —, keeps serving with the server down and
// reconnects to get v5, restarts without any network into v5 without
// enrolling again, and never logs its credential, token or values.
func TestDeviceLifecycle(t *testing.T) {
	w := newWorld(t)
	srv := devicetest.New(t, enrollToken)
	proxy, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	serverURL := "http://" + proxy.Addr()
	dir := t.TempDir()
	logs := &logBuf{}

	v1 := w.push(fixture(t, helloWAT), "v1", w.priv)
	srv.SetDesired(v1)
	h := w.startDevice(t, serverURL, dir, logs)

	start := time.Now()
	id, rep := srv.WaitReport(30*time.Second, "serving v1", func(r api.StatusReport) bool {
		a := appStatus(r)
		return a.Digest == v1.Digest && a.Phase == api.PhaseServing && a.Healthy
	})
	t.Logf("enrolled as %s and serving v1 after %v", id, time.Since(start).Round(time.Millisecond))
	wantServes(t, h, helloV1)
	if rep.Info.Version != "test" || rep.Info.Arch == "" || rep.Info.OS != "linux" || rep.Info.FreeMemory == 0 || rep.Info.FreeDisk == 0 {
		t.Errorf("device info = %+v", rep.Info)
	}
	devs := srv.Devices()
	if len(devs) != 1 || devs[0].Labels["site"] != "lab" || devs[0].Info.Arch == "" {
		t.Fatalf("enrolled devices = %+v", devs)
	}
	cred := devs[0].Credential

	// The credential file: 0600, the server's ID and credential.
	fi, err := os.Stat(filepath.Join(dir, device.CredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %v, want 0600", fi.Mode().Perm())
	}
	stored, ok, err := device.LoadCredential(dir)
	if err != nil || !ok || stored.DeviceID != id || stored.Secret != cred {
		t.Fatalf("stored credential = %v %v %v (id %s)", stored, ok, err, id)
	}

	// v2 rolls out; v1 is kept for rollback.
	v2 := w.push(fixture(t, helloHost), "v2", w.priv)
	srv.SetDesired(v2)
	start = time.Now()
	srv.WaitReport(30*time.Second, "serving v2 with v1 as previous", func(r api.StatusReport) bool {
		a := appStatus(r)
		return a.Digest == v2.Digest && a.Previous == v1.Digest && a.Phase == api.PhaseServing
	})
	t.Logf("v2 rolled out in %v", time.Since(start).Round(time.Millisecond))
	wantServes(t, h, helloV2)

	// v3 fails its health probe: refused, v2 keeps serving, reported.
	v3 := w.push(fixture(t, trapWasm), "v3", w.priv)
	ver := srv.SetDesired(v3)
	_, rep = srv.WaitReport(30*time.Second, "v3 rolled back", func(r api.StatusReport) bool {
		a := appStatus(r)
		return r.DesiredVersion == ver && a.Phase == api.PhaseRolledBack && a.Failed == v3.Digest && a.Digest == v2.Digest
	})
	if a := appStatus(rep); !strings.Contains(a.Error, "health") || !a.Healthy {
		t.Errorf("v3's status %+v: want the health probe named in Error, and v2 healthy", a)
	}
	wantServes(t, h, helloV2)

	// v4 is signed by a key the device does not trust.
	v4 := w.push(fixture(t, helloWAT), "v4", w.rogue)
	ver = srv.SetDesired(v4)
	_, rep = srv.WaitReport(30*time.Second, "v4 refused", func(r api.StatusReport) bool {
		a := appStatus(r)
		return r.DesiredVersion == ver && a.Phase == api.PhaseRolledBack && a.Failed == v4.Digest && a.Digest == v2.Digest
	})
	if a := appStatus(rep); !strings.Contains(a.Error, "signature") && !strings.Contains(a.Error, "key") {
		t.Errorf("v4's status %+v: want a signature error", a)
	}
	wantServes(t, h, helloV2)
	// A refused digest is not tried again on every poll.
	before := strings.Count(logs.String(), "app version refused")
	time.Sleep(time.Second)
	if after := strings.Count(logs.String(), "app version refused"); after != before {
		t.Errorf("the refused digest was tried again: %d refusals logged, then %d", before, after)
	}

	// The server goes away: the app keeps serving; the device retries.
	proxy.Down()
	v5 := w.push(fixture(t, helloWAT), "v5", w.priv)
	ver = srv.SetDesired(v5)
	time.Sleep(1500 * time.Millisecond)
	wantServes(t, h, helloV2)
	if !strings.Contains(logs.String(), "server unreachable; the apps keep serving") {
		t.Errorf("no log line about the unreachable server:\n%s", logs.String())
	}
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	srv.WaitReport(30*time.Second, "serving v5 after reconnecting", func(r api.StatusReport) bool {
		a := appStatus(r)
		return r.DesiredVersion == ver && a.Digest == v5.Digest && a.Phase == api.PhaseServing
	})
	t.Logf("reconnected and rolled out v5 %v after the server came back", time.Since(start).Round(time.Millisecond))
	wantServes(t, h, helloV1)
	// v5 has v1's module: the device pulled it once, for v1 (v4, refused
	// before its pull, fetched nothing).
	if n := w.blobFetches(fixture(t, helloWAT)); n != 1 {
		t.Errorf("the hello-wat module was downloaded %d times, want once: only missing blobs are fetched", n)
	}
	if n := w.blobFetches(fixture(t, helloHost)); n != 1 {
		t.Errorf("v2's module was downloaded %d times, want once", n)
	}

	// Restart with the server down: the last good version serves from the
	// data directory alone, and the device does not enroll again.
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	proxy.Down()
	h = w.startDevice(t, serverURL, dir, logs)
	wantServes(t, h, helloV1)
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	srv.WaitReport(30*time.Second, "a report after the restart", func(r api.StatusReport) bool {
		return r.DesiredVersion == ver && appStatus(r).Phase == api.PhaseServing && r.Info.UptimeSeconds > 0
	})
	if n := srv.Enrollments(); n != 1 {
		t.Errorf("%d enrollments, want 1: a restart must use the stored credential", n)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	for what, secret := range map[string]string{"credential": cred, "enrollment token": enrollToken, "app value": secretValue} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in the logs", what)
		}
	}
	for _, want := range []string{"device enrolled", "device identity loaded", "app deployed", "server reachable again"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

// TestDeviceAuth: a refused enrollment token stops the device with
// ErrBadToken; a revoked credential makes it keep serving and retry, never
// enroll again.
func TestDeviceAuth(t *testing.T) {
	w := newWorld(t)
	srv := devicetest.New(t, enrollToken)
	_, err := device.Start(context.Background(), device.Config{
		Device:  device.Options{Server: "http://10.0.0.1:80", EnrollToken: "x"},
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Policy: signer.Policy{Keys: []signer.Key{w.trusted}},
	})
	if !errors.Is(err, device.ErrInsecureURL) {
		t.Errorf("plain HTTP to a non-loopback server: err = %v, want ErrInsecureURL", err)
	}

	h, err := device.Start(context.Background(), device.Config{
		Device:  device.Options{Server: srv.URL(), EnrollToken: "wrong-token"},
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Policy: signer.Policy{Keys: []signer.Key{w.trusted}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = testenv.Within(t, h.Done(), "the device to stop on a refused token")
	if !errors.Is(err, device.ErrBadToken) {
		t.Errorf("refused token: err = %v, want ErrBadToken", err)
	}
	h.Close(context.Background()) //nolint:errcheck // the test is about Done

	v1 := w.push(fixture(t, helloWAT), "v1", w.priv)
	srv.SetDesired(v1)
	logs := &logBuf{}
	h = w.startDevice(t, srv.URL(), t.TempDir(), logs)
	id, _ := srv.WaitReport(30*time.Second, "serving v1", func(r api.StatusReport) bool { return appStatus(r).Phase == api.PhaseServing })
	srv.Revoke(id)
	srv.SetDesired(v1) // wakes the poll, which now gets 401
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "refused this device's credential") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line about the refused credential:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantServes(t, h, helloV1)
	if n := srv.Enrollments(); n != 1 {
		t.Errorf("%d enrollments after a revocation, want 1", n)
	}
}

// TestDeviceHealthRollbackWithinBake: a version that passes its deploy
// probe and then turns unhealthy is rolled back by the host's own prober;
// the device reports it rolled_back with Failed = that digest, and does not
// put it again.
func TestDeviceHealthRollbackWithinBake(t *testing.T) {
	w := newWorld(t)
	srv := devicetest.New(t, enrollToken)
	v1 := w.push(fixture(t, helloWAT), "v1", w.priv)
	srv.SetDesired(v1)
	logs := &logBuf{}
	h := w.startDevice(t, srv.URL(), t.TempDir(), logs)
	srv.WaitReport(30*time.Second, "serving v1", func(r api.StatusReport) bool { return appStatus(r).Digest == v1.Digest })

	// flaky-health answers 200 three times, then 500 (one instance).
	flaky := w.pushApp(deploy.App{
		Name: appName, Hosts: []string{appName + ".localhost"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorReactor, Routes: []string{"/..."},
			Limits: deploy.Limits{MaxConcurrency: 1},
			Health: &deploy.Health{Path: "/healthz", Interval: deploy.Duration(50 * time.Millisecond),
				Timeout: deploy.Duration(2 * time.Second), FailureThreshold: 2, Bake: deploy.Duration(30 * time.Second)},
		}},
	}, fixture(t, "targets/host/testdata/flaky-health.wasm"), w.priv)
	ver := srv.SetDesired(flaky)
	_, rep := srv.WaitReport(30*time.Second, "flaky rolled back by the prober", func(r api.StatusReport) bool {
		a := appStatus(r)
		return r.DesiredVersion == ver && a.Phase == api.PhaseRolledBack && a.Failed == flaky.Digest && a.Digest == v1.Digest
	})
	if a := appStatus(rep); !strings.Contains(a.Error, "health probe rolled it back") || a.Previous != flaky.Digest {
		t.Errorf("status %+v: want the prober's reason and the flaky version kept as previous", a)
	}
	time.Sleep(time.Second)
	wantServes(t, h, helloV1)
	if n := strings.Count(logs.String(), "digest="+flaky.Digest+" action=put"); n != 1 {
		t.Errorf("the flaky version was put %d times, want once", n)
	}
}

// TestDeviceTLS: over https the device trusts the server's certificate
// through its CA file, and not without it.
func TestDeviceTLS(t *testing.T) {
	w := newWorld(t)
	srv := devicetest.NewTLS(t, enrollToken)
	v1 := w.push(fixture(t, helloWAT), "v1", w.priv)
	srv.SetDesired(v1)

	logs := &logBuf{}
	h, err := device.Start(context.Background(), device.Config{
		Device:  device.Options{Server: srv.URL(), EnrollToken: enrollToken, Backoff: device.Backoff{Min: 50 * time.Millisecond, Max: 100 * time.Millisecond}},
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Policy: signer.Policy{Keys: []signer.Key{w.trusted}},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "certificate") {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate error without the CA file:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.Close(context.Background()) //nolint:errcheck // only the error mattered
	if n := srv.Enrollments(); n != 0 {
		t.Fatalf("%d enrollments over an untrusted certificate", n)
	}

	hc, err := device.NewHTTPClient(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	h, err = device.Start(context.Background(), device.Config{
		Device:  device.Options{Server: srv.URL(), HTTPClient: hc, EnrollToken: enrollToken},
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Policy: signer.Policy{Keys: []signer.Key{w.trusted}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) }) //nolint:errcheck // test end
	srv.WaitReport(30*time.Second, "serving v1 over https", func(r api.StatusReport) bool { return appStatus(r).Phase == api.PhaseServing })
	wantServes(t, h, helloV1)
}

// TestClientProtocol: the client against the protocol server — 304 after
// the wait when unchanged, 200 at once on a change, 401 for an unknown
// credential, 403 for another device's path, bad_token for a used token.
func TestClientProtocol(t *testing.T) {
	srv := devicetest.New(t, "tok-a", "tok-b")
	c, err := device.NewClient(srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := c.Enroll(ctx, api.EnrollRequest{Token: "tok-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Enroll(ctx, api.EnrollRequest{Token: "tok-b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enroll(ctx, api.EnrollRequest{Token: "tok-a"}); !errors.Is(err, device.ErrBadToken) {
		t.Errorf("a used token: %v, want ErrBadToken", err)
	}
	credA := device.Credential{DeviceID: a.DeviceID, Secret: a.Credential}
	ver := srv.SetDesired(api.DesiredApp{Name: "x", Ref: "r@sha256:aa", Digest: "sha256:aa"})
	d, changed, err := c.Desired(ctx, credA, "", time.Second)
	if err != nil || !changed || d.Version != ver || len(d.Apps) != 1 {
		t.Fatalf("first poll: %+v %v %v", d, changed, err)
	}
	start := time.Now()
	_, changed, err = c.Desired(ctx, credA, ver, 300*time.Millisecond)
	if err != nil || changed || time.Since(start) < 300*time.Millisecond {
		t.Errorf("unchanged poll: changed %v, err %v after %v; want 304 after the wait", changed, err, time.Since(start))
	}
	go func() { time.Sleep(200 * time.Millisecond); srv.SetDesired() }()
	start = time.Now()
	d, changed, err = c.Desired(ctx, credA, ver, 10*time.Second)
	if err != nil || !changed || d.Version == ver || time.Since(start) > 5*time.Second {
		t.Errorf("poll across a change: %+v %v %v after %v; want the new version at once", d, changed, err, time.Since(start))
	}
	if _, _, err := c.Desired(ctx, device.Credential{DeviceID: a.DeviceID, Secret: "nope"}, "", time.Second); !errors.Is(err, device.ErrUnauthorized) {
		t.Errorf("unknown credential: %v, want ErrUnauthorized", err)
	}
	if _, _, err := c.Desired(ctx, device.Credential{DeviceID: b.DeviceID, Secret: a.Credential}, "", time.Second); !errors.Is(err, device.ErrForbidden) {
		t.Errorf("another device's path: %v, want ErrForbidden", err)
	}
	if err := c.PutStatus(ctx, credA, api.StatusReport{DesiredVersion: ver}); err != nil {
		t.Errorf("status: %v", err)
	}
}

// TestFleetOfDevices: five real devices (each its own core and data
// directory) on one server through a proxy that cuts every connection
// mid-rollout: each enrolls once with its own token and identity, and all
// converge on each new version. Run with -race, it is the hammer test of
// the poller and reporter goroutines.
func TestFleetOfDevices(t *testing.T) {
	const n = 5
	w := newWorld(t)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("fet_fleet-%d", i)
	}
	srv := devicetest.New(t, tokens...)
	proxy, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	v1 := w.push(fixture(t, helloWAT), "v1", w.priv)
	srv.SetDesired(v1)
	hosts := make([]*device.Host, n)
	for i := range hosts {
		h, err := device.Start(context.Background(), device.Config{
			Device: device.Options{Server: "http://" + proxy.Addr(), EnrollToken: tokens[i], Wait: time.Second, CheckEvery: 50 * time.Millisecond,
				Backoff: device.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}},
			DataDir: t.TempDir(), Listen: "127.0.0.1:0", Policy: signer.Policy{Keys: []signer.Key{w.trusted}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(context.Background()) }) //nolint:errcheck // test end
		hosts[i] = h
	}
	converged := func(ver, dgst string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			done := 0
			for _, d := range srv.Devices() {
				if len(d.Reports) > 0 {
					r := d.Reports[len(d.Reports)-1]
					if a := appStatus(r); r.DesiredVersion == ver && a.Digest == dgst && a.Phase == api.PhaseServing {
						done++
					}
				}
			}
			if done == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d devices report %s serving", done, n, dgst)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	converged("1", v1.Digest)
	ids := map[string]bool{}
	for _, d := range srv.Devices() {
		ids[d.ID] = true
	}
	if len(ids) != n || srv.Enrollments() != n {
		t.Fatalf("%d distinct devices, %d enrollments; want %d each", len(ids), srv.Enrollments(), n)
	}

	v2 := w.push(fixture(t, helloHost), "v2", w.priv)
	ver := srv.SetDesired(v2)
	proxy.ResetAll() // cut the long-polls while the rollout starts
	converged(ver, v2.Digest)
	proxy.Down()
	v3 := w.push(fixture(t, helloWAT), "v3", w.priv)
	ver = srv.SetDesired(v3)
	time.Sleep(300 * time.Millisecond)
	for _, h := range hosts {
		wantServes(t, h, helloV2)
	}
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	converged(ver, v3.Digest)
	for _, h := range hosts {
		wantServes(t, h, helloV1)
	}
	if srv.Enrollments() != n {
		t.Errorf("%d enrollments, want %d", srv.Enrollments(), n)
	}
}
