package hostimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-wasm/ferry/builder/hostimage"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
)

// layerFile returns the one file of img's one layer: its header and bytes.
func layerFile(t *testing.T, img v1.Image) (*tar.Header, []byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Fatalf("layer media type %s, want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if next, err := tr.Next(); err != io.EOF {
		t.Fatalf("a second entry in the layer: %v, %v", next, err)
	}
	return hdr, b
}

// checkIndex checks the layout every ferry-host image has: an OCI index of
// one OCI image per platform in order, each with the /ferry-host
// entrypoint, a non-root user, and a layer holding only the binary (mode
// 0755, 0:0, mtime created). It returns the binaries by platform.
func checkIndex(t *testing.T, idx v1.ImageIndex, plats []hostimage.Platform, created time.Time) map[hostimage.Platform][]byte {
	t.Helper()
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Fatalf("index media type %s", mt)
	}
	man, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Manifests) != len(plats) {
		t.Fatalf("%d manifests, want %d", len(man.Manifests), len(plats))
	}
	out := map[hostimage.Platform][]byte{}
	for i, d := range man.Manifests {
		p := plats[i]
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil || d.Platform.OS != p.OS ||
			d.Platform.Architecture != p.Arch || d.Platform.Variant != p.Variant {
			t.Fatalf("manifest %d: %s %+v, want an OCI manifest for %s", i, d.MediaType, d.Platform, p)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Fatalf("%s: image media type %s", p, mt)
		}
		m, _ := img.Manifest()
		if m.Config.MediaType != types.OCIConfigJSON {
			t.Fatalf("%s: config media type %s", p, m.Config.MediaType)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OS != p.OS || cfg.Architecture != p.Arch || cfg.Variant != p.Variant || !cfg.Created.Equal(created) ||
			len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/ferry-host" || cfg.Config.User != "65532:65532" ||
			len(cfg.RootFS.DiffIDs) != 1 || len(cfg.History) != 1 || !cfg.History[0].Created.Equal(created) {
			t.Fatalf("%s: config %+v", p, cfg)
		}
		hdr, b := layerFile(t, img)
		if hdr.Name != "ferry-host" || hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(created) || hdr.Typeflag != tar.TypeReg {
			t.Fatalf("%s: layer entry %+v", p, hdr)
		}
		out[p] = b
	}
	return out
}

// TestAssembleIsPure: the same binaries and options give the same index
// digest; another timestamp or binary gives another; the layout is an OCI
// index of OCI images, one per platform.
func TestAssembleIsPure(t *testing.T) {
	bins := map[hostimage.Platform][]byte{}
	for _, p := range hostimage.DefaultPlatforms {
		bins[p] = []byte("#!fake ferry-host for " + p.String())
	}
	a, err := hostimage.Assemble(bins, hostimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := hostimage.Assemble(bins, hostimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("two assemblies: %s and %s", da, db)
	}
	got := checkIndex(t, a, hostimage.DefaultPlatforms, time.Unix(0, 0))
	for p, want := range bins {
		if !bytes.Equal(got[p], want) {
			t.Fatalf("%s: layer holds %q", p, got[p])
		}
	}
	later, _ := hostimage.Assemble(bins, hostimage.Options{Created: time.Unix(1700000000, 0)})
	if dl, _ := later.Digest(); dl == da {
		t.Fatal("another Created gave the same digest")
	}
	bins[hostimage.DefaultPlatforms[2]] = []byte("changed")
	if dc, _ := mustAssemble(t, bins).Digest(); dc == da {
		t.Fatal("another binary gave the same digest")
	}
	delete(bins, hostimage.DefaultPlatforms[1])
	if _, err := hostimage.Assemble(bins, hostimage.Options{}); err == nil || !strings.Contains(err.Error(), "no binary for linux/arm64") {
		t.Fatalf("a missing platform: %v", err)
	}
}

func mustAssemble(t *testing.T, bins map[hostimage.Platform][]byte) v1.ImageIndex {
	t.Helper()
	idx, err := hostimage.Assemble(bins, hostimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestBuildPushReadBack builds the real ferry-host image from this
// checkout twice (the same index digest both times: reproducible), pushes
// it to a real registry under a tag, and reads it back: the index and
// every image arrive as built, each binary is a static ELF executable for
// its platform's machine, and ferry's own registry client sees an index.
func TestBuildPushReadBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferry-host for three platforms")
	}
	ctx := context.Background()
	opts := hostimage.Options{Dir: testenv.RepoRoot(t), Annotations: map[string]string{"org.opencontainers.image.title": "ferry-host"}}
	start := time.Now()
	first, err := hostimage.Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first build: %v", time.Since(start).Round(time.Second))
	second, err := hostimage.Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of one checkout: %s and %s", d1, d2)
	}

	reg := testenv.Registry(t)
	ref, err := hostimage.Push(ctx, first, reg+"/ferry/host:test", hostimage.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref != reg+"/ferry/host@"+d1.String() {
		t.Fatalf("Push returned %s, want %s/ferry/host@%s", ref, reg, d1)
	}
	for _, r := range []string{reg + "/ferry/host:test", ref} {
		nr, _ := name.ParseReference(r)
		back, err := remote.Index(nr, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("reading %s back: %v", r, err)
		}
		if db, _ := back.Digest(); db != d1 {
			t.Fatalf("%s is %s, want %s", r, db, d1)
		}
		bins := checkIndex(t, back, hostimage.DefaultPlatforms, time.Unix(0, 0))
		for p, b := range bins {
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: not an ELF file: %v", p, err)
			}
			want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}[p.Arch]
			if f.Machine != want || f.Type != elf.ET_EXEC {
				t.Fatalf("%s: ELF machine %v type %v, want %v ET_EXEC", p, f.Machine, f.Type, want)
			}
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Fatalf("%s: dynamically linked (has an interpreter)", p)
				}
			}
		}
		if ann, _ := back.IndexManifest(); ann.Annotations["org.opencontainers.image.title"] != "ferry-host" {
			t.Fatalf("index annotations %v", ann.Annotations)
		}
	}
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	in, err := rc.Inspect(ctx, ref)
	if err != nil || in.Kind != registry.KindIndex || len(in.Layers) != 3 {
		t.Fatalf("ferry's registry client: %+v, %v", in, err)
	}
}

// TestPushRefusesDigest: an image is pushed to REPO or REPO:TAG.
func TestPushRefusesDigest(t *testing.T) {
	idx := mustAssemble(t, map[hostimage.Platform][]byte{
		hostimage.DefaultPlatforms[0]: {1}, hostimage.DefaultPlatforms[1]: {2}, hostimage.DefaultPlatforms[2]: {3}})
	_, err := hostimage.Push(context.Background(), idx, "127.0.0.1:1/x@sha256:"+strings.Repeat("a", 64), hostimage.PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "not a digest") {
		t.Fatalf("push to a digest: %v", err)
	}
}
