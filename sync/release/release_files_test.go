package release_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/internal/hosttest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// filesEnv is a real embedded registry, a builder with its own cache and a
// registry client.
type filesEnv struct {
	regAddr string
	opts    release.ReleaseOptions
	client  *registry.Client
}

func newFilesEnv(t *testing.T) *filesEnv {
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
	return &filesEnv{regAddr: reg.Addr(), client: rc, opts: release.ReleaseOptions{
		Builder:    builder.New(builder.Options{CacheDir: t.TempDir()}),
		Registry:   rc,
		Repository: reg.Addr() + "/t",
	}}
}

// writeTree creates files (contents by slash path) and symbolic links
// (targets by slash path) under dir.
func writeTree(t *testing.T, dir string, files, links map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.FromSlash(target), full); err != nil {
			t.Fatal(err)
		}
	}
}

// siteSpec is a spec whose one component (the catfile WAT guest of the
// control tests) declares files.
func siteSpec(t *testing.T, files string) map[string]string {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "control", "testdata", "catfile.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"ferry.hcl": `app "site" {
  component "web" {
    wasm   = "./catfile.wasm"
    routes = ["/..."]
    files  = ` + files + `
  }
}
`,
		"catfile.wasm": string(wasm),
	}
}

// TestReleaseCollectsFiles: the release reads each component's declared
// files from the spec directory (directories with their subtree, symbolic
// links inside the directory followed) into the artifact's files layer, and
// refuses links that lead outside, naming them.
func TestReleaseCollectsFiles(t *testing.T) {
	env := newFilesEnv(t)
	ctx := context.Background()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "outside the spec"}, nil)

	t.Run("collected", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, siteSpec(t, `["static/", "robots.txt"]`), nil)
		writeTree(t, dir, map[string]string{
			"static/index.html":  "<h1>index</h1>",
			"static/sub/a.txt":   "a",
			"shared/logo.svg":    "<svg/>",
			"robots.txt":         "User-agent: *",
			"undeclared/key.pem": "never shipped",
		}, map[string]string{
			"static/alias.html": "index.html", // a file link inside the spec directory
			"static/shared":     "../shared",  // a directory link inside it
		})
		rel, err := release.BuildRelease(ctx, dir, "c1", env.opts)
		if err != nil {
			t.Fatal(err)
		}
		ra := rel.Apps["site"]
		pulled, err := env.client.PullApp(ctx, ra.Ref)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := pulled.FileTree("web")
		if err != nil || tree == nil {
			t.Fatalf("FileTree: %v, %v", tree, err)
		}
		want := []string{"robots.txt", "static/alias.html", "static/index.html", "static/shared/logo.svg", "static/sub/a.txt"}
		if diff := cmp.Diff(want, tree.Paths()); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
		if b, _ := fs.ReadFile(tree, "static/alias.html"); string(b) != "<h1>index</h1>" {
			t.Errorf("alias.html = %q, want the file it links to", b)
		}

		// The same files in another checkout give the same digest; a
		// changed file gives another.
		dir2 := t.TempDir()
		if err := os.CopyFS(dir2, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		rel2, err := release.BuildRelease(ctx, dir2, "c1", env.opts)
		if err != nil || rel2.Apps["site"].Digest != ra.Digest || rel2.Apps["site"].Uploaded != 0 {
			t.Fatalf("second checkout: %+v %v; want digest %s and nothing uploaded", rel2.Apps["site"], err, ra.Digest)
		}
		writeTree(t, dir2, map[string]string{"static/sub/b.txt": "b"}, nil)
		rel3, err := release.BuildRelease(ctx, dir2, "c2", env.opts)
		if err != nil || rel3.Apps["site"].Digest == ra.Digest {
			t.Fatalf("a new file kept the digest: %v", err)
		}
	})

	refusals := []struct {
		name, files string
		links       map[string]string
		words       []string
	}{
		{"file link leading outside", `["static/"]`, map[string]string{"static/evil.txt": filepath.ToSlash(filepath.Join(outside, "secret.txt"))},
			[]string{`"static/evil.txt" is a symbolic link to`, "outside the spec directory"}},
		{"directory link leading outside", `["static/"]`, map[string]string{"static/up": "../.."},
			[]string{`"static/up" is a symbolic link to`, "outside the spec directory"}},
		{"link loop", `["static/"]`, map[string]string{"static/loop": "."},
			[]string{`"static/loop" is a symbolic link loop`}},
		{"missing file", `["static/", "missing.txt"]`, nil,
			[]string{`"missing.txt" does not exist`}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, siteSpec(t, tc.files), tc.links)
			writeTree(t, dir, map[string]string{"static/index.html": "x"}, nil)
			rel, err := release.BuildRelease(ctx, dir, "c1", env.opts)
			if err == nil {
				t.Fatal("released")
			}
			ra := rel.Apps["site"]
			if ra.Digest != "" {
				t.Errorf("pushed %s anyway", ra.Digest)
			}
			for _, w := range append(tc.words, "component web: files") {
				if !strings.Contains(ra.Err.Error(), w) {
					t.Errorf("error %q does not say %q", ra.Err, w)
				}
			}
		})
	}
}

// TestStaticSiteExample releases examples/static-site for real (the Go
// guest built by the builder, the app pushed and signed) and deploys it to
// a host through the control API: the guest serves the files of static/
// that travelled in the artifact, and only those.
func TestStaticSiteExample(t *testing.T) {
	env := newFilesEnv(t)
	ctx := context.Background()
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	env.opts.Key = key
	rel, err := release.BuildRelease(ctx, filepath.Join(testenv.RepoRoot(t), "examples", "static-site"), "c1", env.opts)
	if err != nil {
		t.Fatal(err)
	}
	ra := rel.Apps["static-site"]
	if !ra.Signed {
		t.Fatal("not signed")
	}

	h := hosttest.Start(t, signer.Policy{Keys: []signer.Key{{Name: "release", Public: pub}}}, "t")
	if _, err := h.Srv.Put(ctx, "static-site", api.PutRequest{Ref: ra.Ref}); err != nil {
		t.Fatalf("put: %v", err)
	}
	apps := h.Apps

	index, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "static-site", "static", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, contentType string
		code              int
		body              string
	}{
		{"/", "text/html; charset=utf-8", 200, string(index)},
		{"/index.html", "text/html; charset=utf-8", 200, string(index)},
		{"/style.css", "text/css; charset=utf-8", 200, "body {"},
		{"/missing.png", "text/plain; charset=utf-8", 404, "not found"},
		{"/../ferry.hcl", "text/plain; charset=utf-8", 404, "not found"},
		{"/../main.go", "text/plain; charset=utf-8", 404, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, apps.URL+tc.path, nil)
			req.Host = "static-site.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != tc.contentType || !strings.HasPrefix(string(b), tc.body) {
				t.Fatalf("GET %s = %d %q %q, want %d %q starting with %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.code, tc.contentType, tc.body)
			}
		})
	}
}
