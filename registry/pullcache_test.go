package registry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/ferry-wasm/ferry/registry"
)

// TestPullFetchesOnlyMissingBlobs: a second version that changes one
// component of two downloads that component's module (and its new config
// and manifest), not the unchanged one, which comes from the cache
// verified by digest.
func TestPullFetchesOnlyMissingBlobs(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t)
	up, _ := url.Parse("http://" + srv.Addr())
	rp := httputil.NewSingleHostReverseProxy(up)
	var mu sync.Mutex
	gets := map[string]int{}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, d, ok := strings.Cut(r.URL.Path, "/blobs/"); ok && r.Method == http.MethodGet {
			mu.Lock()
			gets[d]++
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	addr := strings.TrimPrefix(proxy.URL, "http://")

	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	v1, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modules2 := map[string][]byte{"web": modules["web"], "api": wasmModule("api module, changed")}
	v2, err := c.PushApp(ctx, addr+"/apps/hello", app, modules2, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	puller := newClient(t, registry.Options{})
	if _, err := puller.PullApp(ctx, v1.Ref); err != nil {
		t.Fatal(err)
	}
	pulled, err := puller.PullApp(ctx, v2.Ref)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, pulled, v2, modules2)
	mu.Lock()
	defer mu.Unlock()
	web, api2 := digest.FromBytes(modules["web"]).String(), digest.FromBytes(modules2["api"]).String()
	if gets[web] != 1 {
		t.Errorf("the unchanged module was downloaded %d times, want once", gets[web])
	}
	if gets[api2] != 1 {
		t.Errorf("the changed module was downloaded %d times, want once", gets[api2])
	}
}

// TestPullSurvivesTornCacheIndex: a host killed while the cache wrote its
// index.json leaves it empty or cut short. The cache is only a cache: the
// next pull sets the torn index aside and goes on, instead of failing every
// pull until someone deletes the directory by hand.
func TestPullSurvivesTornCacheIndex(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t)
	addr := srv.Addr()
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	v1, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, torn := range map[string]string{"empty": "", "cut short": `{"schemaVersion":2,"manifests":[{"mediaType":`} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			first := newClient(t, registry.Options{CacheDir: dir})
			if _, err := first.PullApp(ctx, v1.Ref); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(torn), 0o644); err != nil {
				t.Fatal(err)
			}
			again := newClient(t, registry.Options{CacheDir: dir})
			pulled, err := again.PullApp(ctx, v1.Ref)
			if err != nil {
				t.Fatalf("pull over a torn cache index: %v", err)
			}
			checkPulled(t, pulled, v1, modules)
			if _, err := os.Stat(filepath.Join(dir, "index.json.torn")); err != nil {
				t.Fatalf("the torn index was not kept aside: %v", err)
			}
		})
	}
}
