package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/registry"
)

// longName is longer than a ustar name field and not ASCII, so the archive
// needs PAX records for it.
var longName = "static/" + strings.Repeat("très-long-", 12) + ".txt"

// siteFS is a small site: the declared "static/" tree and a file that is
// not declared.
func siteFS(mtime time.Time, mode fs.FileMode) fstest.MapFS {
	return fstest.MapFS{
		"static/index.html":  {Data: []byte("<h1>hello from a file</h1>\n"), ModTime: mtime, Mode: mode},
		"static/css/app.css": {Data: []byte("h1 { color: teal }\n"), ModTime: mtime, Mode: mode},
		"static/empty":       {Mode: fs.ModeDir | 0o700, ModTime: mtime},
		longName:             {Data: []byte("long"), ModTime: mtime, Mode: mode},
		"robots.txt":         {Data: []byte("User-agent: *\n"), ModTime: mtime, Mode: mode},
		"secret.key":         {Data: []byte("not declared, never packed"), ModTime: mtime, Mode: mode},
	}
}

type tarEntry struct {
	Name       string
	Type       byte
	Mode       int64
	Size       int64
	UID, GID   int
	Uname      string
	ModTime    int64
	PAXRecords map[string]string
}

func tarEntries(t *testing.T, archive []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Size: h.Size, UID: h.Uid, GID: h.Gid,
			Uname: h.Uname + h.Gname, ModTime: h.ModTime.Unix(), PAXRecords: h.PAXRecords})
	}
}

func TestPackFilesCanonical(t *testing.T) {
	declared := []string{"static/", "robots.txt"}
	a, err := registry.PackFiles(siteFS(time.Now(), 0o600), declared, 0)
	if err != nil {
		t.Fatal(err)
	}
	entries := tarEntries(t, a)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
		if e.UID != 0 || e.GID != 0 || e.Uname != "" || e.ModTime != 0 {
			t.Errorf("entry %q is not canonical: %+v", e.Name, e)
		}
		wantMode, wantType := int64(0o644), byte(tar.TypeReg)
		if strings.HasSuffix(e.Name, "/") {
			wantMode, wantType = 0o755, tar.TypeDir
		}
		if e.Mode != wantMode || e.Type != wantType {
			t.Errorf("entry %q: mode %o type %q, want %o %q", e.Name, e.Mode, e.Type, wantMode, wantType)
		}
	}
	want := []string{"robots.txt", "static/", "static/css/", "static/css/app.css", "static/empty/", "static/index.html", longName}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}

	// Other times, modes, declaration order and spelling: the same bytes.
	b, err := registry.PackFiles(siteFS(time.Unix(12345, 0), 0o755), []string{"robots.txt", "static", "static/index.html"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the same files with other times and modes give a different archive")
	}

	// A real directory on disk gives the same bytes as the in-memory tree.
	dir := t.TempDir()
	for name, f := range siteFS(time.Time{}, 0) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if f.Mode.IsDir() {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	c, err := registry.PackFiles(os.DirFS(dir), declared, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Error("os.DirFS and the same tree in memory give different archives")
	}

	// The archive reads back into a sound fs.FS holding exactly the
	// declared files.
	tree, err := registry.ReadFiles(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(tree, "robots.txt", "static/index.html", "static/css/app.css", longName, "static/empty"); err != nil {
		t.Fatal(err)
	}
	if got := tree.Paths(); !cmp.Equal(got, []string{"robots.txt", "static/css/app.css", "static/index.html", longName}) {
		t.Errorf("Paths() = %q", got)
	}
	if _, err := fs.Stat(tree, "secret.key"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an undeclared file was packed: %v", err)
	}
	if b, _ := fs.ReadFile(tree, "static/index.html"); string(b) != "<h1>hello from a file</h1>\n" {
		t.Errorf("index.html = %q", b)
	}
}

func TestPackFilesRefuses(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "static"), 0o755)
	os.WriteFile(filepath.Join(dir, "static", "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, 4096), 0o644)
	if err := os.Symlink("a.txt", filepath.Join(dir, "static", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("static/a.txt", filepath.Join(dir, "toplink")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		declared []string
		max      int64
		want     []error
		mention  string
	}{
		{"missing", []string{"nope.txt"}, 0, []error{registry.ErrInvalidApp}, `"nope.txt" does not exist`},
		{"absolute", []string{"/etc/passwd"}, 0, []error{registry.ErrInvalidApp}, `"/etc/passwd"`},
		{"dot dot", []string{"../x"}, 0, []error{registry.ErrInvalidApp}, `"../x"`},
		{"symlink inside a directory", []string{"static"}, 0, []error{registry.ErrInvalidApp}, `"static/link" is a symbolic link`},
		{"declared symlink", []string{"toplink"}, 0, []error{registry.ErrInvalidApp}, `"toplink" is a symbolic link`},
		{"too large", []string{"big.bin"}, 2048, []error{registry.ErrInvalidApp, registry.ErrFilesTooLarge}, "more than 2048 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.PackFiles(os.DirFS(dir), tc.declared, tc.max)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want it to mention %s", err, tc.mention)
			}
		})
	}
}

// craft writes a tar with the given headers (file contents "x").
func craft(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }

func TestReadFilesRefusesUnsafeArchives(t *testing.T) {
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		mention string
	}{
		{"dot dot", func(t *testing.T) []byte { return craft(t, reg("../x")) }, `"../x"`},
		{"dot dot inside", func(t *testing.T) []byte { return craft(t, reg("static/../../x")) }, `"static/../../x"`},
		{"absolute", func(t *testing.T) []byte { return craft(t, reg("/etc/passwd")) }, `"/etc/passwd"`},
		{"symlink", func(t *testing.T) []byte {
			return craft(t, &tar.Header{Name: "static/passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
		}, `"static/passwd": is a symbolic link`},
		{"hard link", func(t *testing.T) []byte {
			return craft(t, reg("a"), &tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"})
		}, `"b": is a hard link`},
		{"device", func(t *testing.T) []byte {
			return craft(t, &tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3})
		}, `"null"`},
		{"duplicate", func(t *testing.T) []byte { return craft(t, reg("a"), reg("a")) }, `"a": appears twice`},
		{"below a file", func(t *testing.T) []byte { return craft(t, reg("a"), reg("a/b")) }, `"a/b" lies below "a"`},
		{"not clean", func(t *testing.T) []byte { return craft(t, reg("./a")) }, `"./a"`},
		{"not a tar", func(t *testing.T) []byte { return bytes.Repeat([]byte("garbage!"), 100) }, "files archive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.ReadFiles(tc.archive(t))
			if !errors.Is(err, registry.ErrInvalidArtifact) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err = %v, want ErrInvalidArtifact mentioning %s", err, tc.mention)
			}
		})
	}
	// Archives from other tools are fine when they hold only files and
	// directories; missing parents are implied.
	tree, err := registry.ReadFiles(craft(t, reg("a/b/c.txt"), &tar.Header{Name: "d/", Typeflag: tar.TypeDir}))
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(tree, "a/b/c.txt", "d"); err != nil {
		t.Fatal(err)
	}
}

// filesApp is a two-component app; "web" declares files.
func filesApp() (deploy.App, map[string][]byte, map[string]fs.FS) {
	app, modules := testApp("v1")
	app.Components[0].Files = []string{"static/", "robots.txt"}
	return app, modules, map[string]fs.FS{"web": siteFS(time.Now(), 0o644)}
}

func TestPushPullFilesRoundTrip(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	px := startProxy(t, addr)
	c := newClient(t, registry.Options{})
	app, modules, files := filesApp()
	opts := registry.PushOptions{Pack: registry.PackOptions{Files: files}}
	res, err := c.PushApp(ctx, px.Addr+"/apps/site", app, modules, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Components[0].Files == "" || res.Components[1].Files != "" {
		t.Fatalf("pushed components: %+v", res.Components)
	}

	// Reproducible: packing again (other mtimes) gives the same digest,
	// and re-pushing sends nothing.
	again, _, files2 := filesApp()
	p, err := registry.Pack(again, modules, registry.PackOptions{Files: files2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Digest != res.Digest {
		t.Errorf("Pack digest %s, pushed %s", p.Manifest.Digest, res.Digest)
	}
	px.reset()
	if r2, err := c.PushApp(ctx, px.Addr+"/apps/site", again, modules, registry.PushOptions{Pack: registry.PackOptions{Files: files2}}); err != nil || r2.Uploaded != 0 || px.writes() != 0 {
		t.Errorf("re-push: %+v %v, %d writes", r2, err, px.writes())
	}

	// The manifest: Wasm layers first, then the files layer naming "web".
	var man ocispec.Manifest
	if err := json.Unmarshal(p.ManifestJSON, &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Layers) != 3 {
		t.Fatalf("%d layers, want 3", len(man.Layers))
	}
	fl := man.Layers[2]
	wantAnn := map[string]string{ocispec.AnnotationTitle: "web.files.tar", registry.AnnotationComponent: "web"}
	if fl.MediaType != registry.MediaTypeFilesLayer || !cmp.Equal(fl.Annotations, wantAnn) || fl.Digest != res.Components[0].Files {
		t.Errorf("files layer = %+v", fl)
	}
	// The component's own CNCF Wasm artifact stays one Wasm layer.
	var cm ocispec.Manifest
	json.Unmarshal(p.Components[0].ManifestJSON, &cm)
	if len(cm.Layers) != 1 || cm.Layers[0].MediaType != registry.MediaTypeWasmLayer {
		t.Errorf("component manifest layers: %+v", cm.Layers)
	}

	for _, fromCache := range []bool{false, true} {
		pulled, err := c.PullApp(ctx, res.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if pulled.FromCache != fromCache {
			t.Errorf("FromCache = %v, want %v", pulled.FromCache, fromCache)
		}
		if len(pulled.Files) != 1 || len(pulled.Modules) != 2 {
			t.Fatalf("pulled %d files layers and %d modules", len(pulled.Files), len(pulled.Modules))
		}
		tree, err := pulled.FileTree("web")
		if err != nil {
			t.Fatal(err)
		}
		if b, err := fs.ReadFile(tree, "static/css/app.css"); err != nil || string(b) != "h1 { color: teal }\n" {
			t.Errorf("app.css = %q, %v", b, err)
		}
		if tree, err := pulled.FileTree("api"); tree != nil || err != nil {
			t.Errorf("FileTree(api) = %v, %v; want nothing", tree, err)
		}
	}

	// Inspect shows the layer and the declared files.
	in, err := c.Inspect(ctx, res.Ref)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := in.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web.files.tar", registry.MediaTypeFilesLayer, "Files:", "static/ robots.txt (layer " + string(fl.Digest)} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, text.String())
		}
	}

	// Copy brings the files layer along.
	dst := startServer(t).Addr()
	if _, err := c.Copy(ctx, res.Ref, dst+"/mirror/site"); err != nil {
		t.Fatal(err)
	}
	pulled, err := newClient(t, registry.Options{}).PullApp(ctx, dst+"/mirror/site@"+res.Digest.String())
	if err != nil || len(pulled.Files) != 1 {
		t.Fatalf("pull of the copy: %v", err)
	}
}

func TestPackFilesDeclarations(t *testing.T) {
	app, modules, files := filesApp()
	tests := []struct {
		name    string
		app     func() deploy.App
		files   map[string]fs.FS
		max     int64
		want    error
		mention string
	}{
		{"declared without a tree", func() deploy.App { return app }, nil, 0, registry.ErrInvalidApp, `declares files`},
		{"tree for a component without files", func() deploy.App { return app },
			map[string]fs.FS{"web": files["web"], "api": files["web"]}, 0, registry.ErrInvalidApp, `"api", which declares none`},
		{"tree for an unknown component", func() deploy.App { return app },
			map[string]fs.FS{"web": files["web"], "db": files["web"]}, 0, registry.ErrInvalidApp, `unknown component "db"`},
		{"declared file missing", func() deploy.App {
			a := app
			a.Components = append([]deploy.Component(nil), app.Components...)
			a.Components[0].Files = []string{"static/nope.html"}
			return a
		}, files, 0, registry.ErrInvalidApp, `component "web": invalid app: declared file "static/nope.html" does not exist`},
		{"too large", func() deploy.App { return app }, files, 1024, registry.ErrFilesTooLarge, "more than 1024 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.Pack(tc.app(), modules, registry.PackOptions{Files: tc.files, MaxFilesBytes: tc.max})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err = %v, want %v mentioning %s", err, tc.want, tc.mention)
			}
		})
	}
}

// pushTampered pushes the app of filesApp with its files layer replaced by
// archive (the manifest rewritten to match) and returns REPO@DIGEST.
func pushTampered(t *testing.T, addr string, archive []byte) string {
	t.Helper()
	ctx := context.Background()
	app, modules, files := filesApp()
	p, err := registry.Pack(app, modules, registry.PackOptions{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	json.Unmarshal(p.ManifestJSON, &man)
	fl := &man.Layers[2]
	fl.Digest, fl.Size = digest.FromBytes(archive), int64(len(archive))
	manJSON, _ := json.Marshal(man)
	repo, err := remote.NewRepository(addr + "/apps/evil")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	blobs := append(p.Blobs(), registry.Blob{Desc: *fl, Data: archive})
	for _, b := range blobs {
		if b.Desc.MediaType == registry.MediaTypeFilesLayer && b.Desc.Digest != fl.Digest {
			continue
		}
		if err := repo.Push(ctx, b.Desc, bytes.NewReader(b.Data)); err != nil {
			t.Fatal(err)
		}
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manJSON), Size: int64(len(manJSON))}
	if err := repo.Push(ctx, md, bytes.NewReader(manJSON)); err != nil {
		t.Fatal(err)
	}
	return addr + "/apps/evil@" + md.Digest.String()
}

func TestPullRefusesUnsafeFilesLayer(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	tests := []struct {
		name    string
		archive []byte
		mention string
	}{
		{"dot dot", craft(t, reg("../x")), `"../x"`},
		{"absolute", craft(t, reg("/etc/passwd")), `"/etc/passwd"`},
		{"symlink", craft(t, &tar.Header{Name: "static/index.html", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}), "symbolic link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := pushTampered(t, addr, tc.archive)
			cache := t.TempDir()
			for range 2 { // the second time, nothing may come from the cache
				_, err := newClient(t, registry.Options{CacheDir: cache}).PullApp(ctx, ref)
				var be *registry.BlobError
				if !errors.Is(err, registry.ErrInvalidArtifact) || !errors.As(err, &be) ||
					!strings.Contains(err.Error(), `files of "web"`) || !strings.Contains(err.Error(), tc.mention) {
					t.Fatalf("pull: %v, want ErrInvalidArtifact naming the files of \"web\" and %s", err, tc.mention)
				}
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		ref := pushTampered(t, addr, craft(t, reg("a"), reg("b"), reg("c")))
		px := startProxy(t, addr)
		ref = px.Addr + strings.TrimPrefix(ref, addr)
		_, err := newClient(t, registry.Options{MaxFilesBytes: 1024}).PullApp(ctx, ref)
		if !errors.Is(err, registry.ErrFilesTooLarge) || !errors.Is(err, registry.ErrInvalidArtifact) || !strings.Contains(err.Error(), "more than the limit of 1024") {
			t.Fatalf("pull: %v, want ErrFilesTooLarge", err)
		}
		if n := px.reqs["GET"]; n != 1 { // the manifest only
			t.Errorf("%d GETs, want 1 (the manifest; no blob read)", n)
		}
	})
}

func TestNewFileTree(t *testing.T) {
	tree, err := registry.NewFileTree(map[string][]byte{
		"static/index.html": []byte("hi"),
		"static/empty/":     nil,
		"robots.txt":        []byte("User-agent: *\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(tree, "static/index.html", "static/empty", "robots.txt"); err != nil {
		t.Fatal(err)
	}
	if tree.Size() != 16 {
		t.Errorf("Size() = %d, want 16", tree.Size())
	}
	for _, bad := range []map[string][]byte{
		{"../x": nil}, {"/abs": nil}, {"a": nil, "a/b": nil}, {"a//b": nil},
	} {
		if _, err := registry.NewFileTree(bad); err == nil {
			t.Errorf("NewFileTree(%q) accepted", slices.Collect(maps.Keys(bad)))
		}
	}
}

// benchSite is 1,000 files of 4 KiB in 10 directories (about 4 MiB).
func benchSite() fstest.MapFS {
	m := fstest.MapFS{}
	data := bytes.Repeat([]byte("0123456789abcdef"), 256)
	for i := range 1000 {
		m[fmt.Sprintf("static/d%d/f%03d.txt", i%10, i)] = &fstest.MapFile{Data: data}
	}
	return m
}

// BenchmarkPackFiles packs the benchSite tree into a canonical archive.
func BenchmarkPackFiles(b *testing.B) {
	site := benchSite()
	b.SetBytes(4 << 20)
	for b.Loop() {
		if _, err := registry.PackFiles(site, []string{"static"}, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFiles checks and unpacks the benchSite archive, as a pull
// and a ferry-host PUT or restore do.
func BenchmarkReadFiles(b *testing.B) {
	a, err := registry.PackFiles(benchSite(), []string{"static"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(a)))
	for b.Loop() {
		if _, err := registry.ReadFiles(a); err != nil {
			b.Fatal(err)
		}
	}
}
