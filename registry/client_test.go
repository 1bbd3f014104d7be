package registry_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
)

// checkPulled compares a pulled app with what was pushed.
func checkPulled(t *testing.T, got *registry.PulledApp, want *registry.PushResult, modules map[string][]byte) {
	t.Helper()
	if got.Digest != want.Digest {
		t.Errorf("pulled digest %s, pushed %s", got.Digest, want.Digest)
	}
	if diff := cmp.Diff(want.App, got.App); diff != "" {
		t.Errorf("pulled app (-pushed +pulled):\n%s", diff)
	}
	for name, wasm := range modules {
		b, err := got.Module(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, wasm) {
			t.Errorf("module %s: %d bytes pulled differ from the %d pushed", name, len(b), len(wasm))
		}
	}
}

// TestPushPullCopy pushes, pulls and copies between the embedded registry,
// the in-memory test registry and Distribution running as its own process.
func TestPushPullCopy(t *testing.T) {
	ctx := context.Background()
	backends := map[string]string{
		"embedded": startServer(t).Addr(),
		"inmemory": testenv.Registry(t),
		"process":  startExternalRegistry(t),
	}
	pairs := [][2]string{{"embedded", "process"}, {"process", "inmemory"}, {"inmemory", "embedded"}}
	for _, pair := range pairs {
		src := backends[pair[0]]
		t.Run(pair[0]+"-to-"+pair[1], func(t *testing.T) {
			// The destination is reached through a counting proxy, so a
			// copy that sends anything shows in the write count.
			px := startProxy(t, backends[pair[1]])
			dst := px.Addr
			app, modules := testApp(pair[0])
			c := newClient(t, registry.Options{})
			res, err := c.PushApp(ctx, src+"/apps/hello", app, modules, registry.PushOptions{Tags: []string{"v1"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Uploaded != 5 || res.Skipped != 0 || res.ManifestsPushed != 3 {
				t.Errorf("first push: uploaded %d skipped %d manifests %d, want 5 0 3", res.Uploaded, res.Skipped, res.ManifestsPushed)
			}
			if want := src + "/apps/hello@" + res.Digest.String(); res.Ref != want {
				t.Errorf("Ref = %s, want %s", res.Ref, want)
			}
			desc, err := c.Resolve(ctx, src+"/apps/hello:v1")
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != res.Digest {
				t.Errorf("tag v1 resolves to %s, pushed %s", desc.Digest, res.Digest)
			}

			pulled, err := c.PullApp(ctx, res.Ref)
			if err != nil {
				t.Fatal(err)
			}
			if pulled.FromCache {
				t.Error("first pull claims to come from the cache")
			}
			checkPulled(t, pulled, res, modules)

			cp, err := c.Copy(ctx, src+"/apps/hello:v1", dst+"/mirror/hello:prod")
			if err != nil {
				t.Fatal(err)
			}
			if cp.Digest != res.Digest || len(cp.Components) != 2 {
				t.Errorf("copy: digest %s, %d components; want %s, 2", cp.Digest, len(cp.Components), res.Digest)
			}
			// A fresh client (empty cache) reads the copy by tag.
			c2 := newClient(t, registry.Options{})
			pulled2, err := c2.PullApp(ctx, dst+"/mirror/hello:prod")
			if err != nil {
				t.Fatal(err)
			}
			checkPulled(t, pulled2, res, modules)
			// The component artifacts came along too.
			for _, pc := range res.Components {
				in, err := c2.Inspect(ctx, dst+"/mirror/hello@"+pc.Manifest.String())
				if err != nil {
					t.Fatal(err)
				}
				if in.Kind != registry.KindComponent || in.Layers[0].Digest != pc.Layer {
					t.Errorf("copied component %s: kind %s, layer %s", pc.Name, in.Kind, in.Layers[0].Digest)
				}
			}
			if px.writes() == 0 {
				t.Fatal("the first copy sent no write request through the proxy: the count below proves nothing")
			}
			// Copying again sends nothing: no blob, no manifest, no tag.
			px.reset()
			again, err := c.Copy(ctx, src+"/apps/hello:v1", dst+"/mirror/hello:prod")
			if err != nil {
				t.Fatal(err)
			}
			if again.Digest != res.Digest || again.Tag != "prod" {
				t.Errorf("second copy: digest %s tag %q", again.Digest, again.Tag)
			}
			if w := px.writes(); w != 0 {
				t.Errorf("copying again sent %d write requests (PUT/POST/PATCH: %v), want 0", w, px.reqs)
			}
		})
	}
}

// TestRepushUploadsNothing counts the write requests a registry receives
// through a loopback proxy.
func TestRepushUploadsNothing(t *testing.T) {
	ctx := context.Background()
	px := startProxy(t, startServer(t).Addr())
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	repo := px.Addr + "/apps/hello"

	first, err := c.PushApp(ctx, repo, app, modules, registry.PushOptions{Tags: []string{"latest"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Uploaded != 5 || px.writes() == 0 {
		t.Fatalf("first push: uploaded %d blobs with %d write requests", first.Uploaded, px.writes())
	}
	t.Logf("first push: %d blobs (%d bytes), %d write requests", first.Uploaded, first.UploadedBytes, px.writes())

	px.reset()
	again, err := c.PushApp(ctx, repo, app, modules, registry.PushOptions{Tags: []string{"latest"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || again.Skipped != 5 || again.ManifestsPushed != 0 || again.Digest != first.Digest {
		t.Errorf("re-push: uploaded %d skipped %d manifests %d digest %s", again.Uploaded, again.Skipped, again.ManifestsPushed, again.Digest)
	}
	if w := px.writes(); w != 0 {
		t.Errorf("re-push of an unchanged app sent %d write requests (PUT/POST/PATCH), want 0", w)
	}

	// Changing one component uploads its layer, its wasm config stays the
	// same digest only if the module is the same: here only "api" changes.
	px.reset()
	app2, modules2 := testApp("v2")
	changed, err := c.PushApp(ctx, repo, app2, modules2, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// New: api layer, api wasm config, app config. Kept: web layer and config.
	if changed.Uploaded != 3 || changed.Skipped != 2 {
		t.Errorf("push with one changed component: uploaded %d skipped %d, want 3 2", changed.Uploaded, changed.Skipped)
	}
	if px.reqs[http.MethodPost] != 3 {
		t.Errorf("%d upload sessions (POST), want 3", px.reqs[http.MethodPost])
	}
}

func TestPullDetectsTampering(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t)
	app, modules := testApp("v1")
	res, err := newClient(t, registry.Options{}).PushApp(ctx, srv.Addr()+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	apiLayer := digest.FromBytes(modules["api"])
	tests := []struct {
		name     string
		path     string // URL path suffix whose response is changed
		tamper   func([]byte) []byte
		wantRole string
		wantDig  digest.Digest
	}{
		{"layer byte flipped", "/blobs/" + apiLayer.String(), func(b []byte) []byte {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 0xff
			return b
		}, `layer "api"`, apiLayer},
		{"layer grown", "/blobs/" + apiLayer.String(), func(b []byte) []byte { return append(bytes.Clone(b), "evil"...) }, `layer "api"`, apiLayer},
		{"manifest changed", "/manifests/" + res.Digest.String(), func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"org.opencontainers.image.title":"hello"`), []byte(`"org.opencontainers.image.title":"HELLO"`), 1)
		}, "app manifest", res.Digest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px := startProxy(t, srv.Addr())
			px.setTamper(func(req *http.Request, body []byte) []byte {
				if strings.HasSuffix(req.URL.Path, tc.path) {
					return tc.tamper(body)
				}
				return body
			})
			c := newClient(t, registry.Options{})
			_, err := c.PullApp(ctx, px.Addr+"/apps/hello@"+res.Digest.String())
			if !errors.Is(err, registry.ErrDigestMismatch) {
				t.Fatalf("err = %v, want ErrDigestMismatch", err)
			}
			var be *registry.BlobError
			if !errors.As(err, &be) || be.Role != tc.wantRole || be.Digest != tc.wantDig {
				t.Fatalf("err = %v, want a BlobError for %s %s", err, tc.wantRole, tc.wantDig)
			}
			if !strings.Contains(err.Error(), tc.wantDig.String()) || !strings.Contains(err.Error(), tc.wantRole) {
				t.Errorf("message %q does not name the blob", err)
			}
			t.Logf("refused: %v", err)
			// Nothing bad was cached: without tampering the same client
			// pulls the app, from the network.
			px.setTamper(nil)
			pulled, err := c.PullApp(ctx, px.Addr+"/apps/hello@"+res.Digest.String())
			if err != nil {
				t.Fatal(err)
			}
			if pulled.FromCache {
				t.Error("a failed pull left a complete app in the cache")
			}
			checkPulled(t, pulled, res, modules)
		})
	}
}

func TestTagRepointed(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	c := newClient(t, registry.Options{})
	a1, m1 := testApp("v1")
	r1, err := c.PushApp(ctx, addr+"/apps/hello:prod", a1, m1, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a2, m2 := testApp("v2")
	r2, err := c.PushApp(ctx, addr+"/apps/hello:prod", a2, m2, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Digest == r2.Digest {
		t.Fatal("two versions share a digest")
	}
	desc, err := c.Resolve(ctx, addr+"/apps/hello:prod")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != r2.Digest {
		t.Errorf("prod resolves to %s, want the new %s", desc.Digest, r2.Digest)
	}
	fresh := newClient(t, registry.Options{})
	old, err := fresh.PullApp(ctx, r1.Ref)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, old, r1, m1)
	byTag, err := fresh.PullApp(ctx, addr+"/apps/hello:prod")
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, byTag, r2, m2)
}

func TestPullFromCacheWithRegistryStopped(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t)
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	res, err := c.PushApp(ctx, srv.Addr()+"/apps/hello:v1", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PullApp(ctx, res.Ref); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	pulled, err := c.PullApp(ctx, res.Ref)
	if err != nil {
		t.Fatalf("pull by digest with the registry stopped: %v", err)
	}
	if !pulled.FromCache {
		t.Error("FromCache = false")
	}
	checkPulled(t, pulled, res, modules)

	// A tag needs the registry: the error says a retry may help.
	_, err = c.PullApp(ctx, srv.Addr()+"/apps/hello:v1")
	if !errors.Is(err, registry.ErrUnavailable) || !registry.Retryable(err) {
		t.Errorf("pull by tag with the registry down: %v, want ErrUnavailable", err)
	}
	// A digest never pulled is not in the cache either.
	_, err = c.PullApp(ctx, srv.Addr()+"/apps/hello@"+digest.FromString("nope").String())
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("pull of an uncached digest with the registry down: %v, want ErrUnavailable", err)
	}
}

func TestCacheTamperingDetected(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	cache := t.TempDir()
	c := newClient(t, registry.Options{CacheDir: cache})
	app, modules := testApp("v1")
	res, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PullApp(ctx, res.Ref); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(modules["web"])
	path := filepath.Join(cache, "blobs", "sha256", d.Encoded())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = newClient(t, registry.Options{CacheDir: cache}).PullApp(ctx, res.Ref)
	var be *registry.BlobError
	if !errors.Is(err, registry.ErrDigestMismatch) || !errors.As(err, &be) || be.Digest != d {
		t.Fatalf("pull from a tampered cache: %v, want ErrDigestMismatch naming %s", err, d)
	}
}

func TestNotFoundAndNotAnApp(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	res, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref string
		want      error
	}{
		{"missing tag", addr + "/apps/hello:nope", registry.ErrNotFound},
		{"missing repo", addr + "/apps/nothing:v1", registry.ErrNotFound},
		{"missing digest", addr + "/apps/hello@" + digest.FromString("x").String(), registry.ErrNotFound},
		{"component is not an app", res.Components[0].Ref, registry.ErrInvalidArtifact},
		{"no tag or digest", addr + "/apps/hello", registry.ErrInvalidReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PullApp(ctx, tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if registry.Retryable(err) {
				t.Errorf("%v claims a retry may help", err)
			}
		})
	}
}

func TestReproducibleAcrossRegistries(t *testing.T) {
	ctx := context.Background()
	var digests []digest.Digest
	for range 2 {
		addr := startServer(t).Addr()
		app, modules := testApp("v1")
		res, err := newClient(t, registry.Options{}).PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Digest)
	}
	app, modules := testApp("v1")
	p, err := registry.Pack(app, modules, registry.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if digests[0] != digests[1] || digests[0] != p.Manifest.Digest {
		t.Errorf("same inputs, digests %v and Pack %s", digests, p.Manifest.Digest)
	}
}

// TestOrasPullInterop fetches what ferry pushed with the oras CLI.
func TestOrasPullInterop(t *testing.T) {
	ctx := context.Background()
	oras := testenv.Tool(t, "oras-v1.3.6")
	addr := startServer(t).Addr()
	app, modules := testApp("v1")
	res, err := newClient(t, registry.Options{}).PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pull := func(ref string) string {
		dir := t.TempDir()
		cmd := exec.Command(oras, "pull", "--plain-http", ref, "-o", dir)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user config
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("oras pull %s: %v\n%s", ref, err, out)
		}
		return dir
	}
	for _, pc := range res.Components {
		dir := pull(pc.Ref)
		got, err := os.ReadFile(filepath.Join(dir, pc.Name+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, modules[pc.Name]) {
			t.Errorf("oras pulled %d bytes for %s, ferry pushed %d different bytes", len(got), pc.Name, len(modules[pc.Name]))
		}
	}
	// The app manifest pulls as one file per component.
	dir := pull(res.Ref)
	for name, wasm := range modules {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wasm) {
			t.Errorf("app layer %s differs", name)
		}
	}
}

// TestConcurrentUse hammers one client (one cache) with parallel pushes
// and pulls; run with -race.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	c := newClient(t, registry.Options{})
	var wg sync.WaitGroup
	results := make([]*registry.PushResult, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			app, modules := testApp(string(rune('a' + i)))
			app.Name = "app" + string(rune('a'+i))
			results[i], errs[i] = c.PushApp(ctx, addr+"/apps/"+app.Name, app, modules, registry.PushOptions{Tags: []string{"v1"}})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pullErrs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			res := results[i%4]
			p, err := c.PullApp(ctx, res.Ref)
			if err == nil && cmp.Diff(res.App, p.App) != "" {
				err = errors.New("pulled app differs")
			}
			pullErrs <- err
		})
	}
	wg.Wait()
	close(pullErrs)
	for err := range pullErrs {
		if err != nil {
			t.Error(err)
		}
	}
}

var _ = deploy.App{}
