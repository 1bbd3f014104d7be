package hostimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-wasm/ferry/builder/hostimage"
	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
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
// its platform's machine, ferry's own registry client sees an index, and
// each pulled entrypoint runs `ferry-host app` as a pod would.
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

	// Each image's entrypoint, as pulled back, runs a pod's command: a
	// signed app becomes ready and serves; SIGTERM exits 0. arm64 and
	// armv7 run under qemu-user, when installed (make test installs it).
	nr, _ := name.ParseReference(ref)
	back, err := remote.Index(nr, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	appRef, trust := signedHello(t, rc, reg)
	man, _ := back.IndexManifest()
	for i, p := range hostimage.DefaultPlatforms {
		img, err := back.Image(man.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		_, bin := layerFile(t, img)
		t.Run("run-"+strings.ReplaceAll(p.String(), "/", "-"), func(t *testing.T) {
			var argv []string
			switch p.Arch {
			case "arm64":
				argv = []string{"qemu-aarch64-static", "-cpu", "cortex-a72"}
			case "arm":
				argv = []string{"qemu-arm-static", "-cpu", "cortex-a7"}
			}
			if len(argv) > 0 {
				if _, err := exec.LookPath(argv[0]); err != nil {
					t.Skipf("%s not installed (apt-get install qemu-user-static)", argv[0])
				}
			}
			runAppMode(t, append(argv, writeExec(t, bin)), cfg.Config.Env, appRef, trust)
		})
	}
}

// signedHello pushes the hello-wat example as app "hello" to reg, signs it
// with a fresh key, and returns its REPO@DIGEST and a trust directory
// holding the public key (as a mounted Secret would).
func signedHello(t *testing.T, rc *registry.Client, reg string) (string, string) {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	app := deploy.App{Name: "hello", Hosts: []string{"hello.localhost"}, Components: []deploy.Component{{
		Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."}, Health: &deploy.Health{Path: "/healthz"}}}}
	res, err := rc.PushApp(context.Background(), reg+"/apps/hello", app, map[string][]byte{"web": wasm}, registry.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Sign(context.Background(), res.Ref, priv, signer.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cosign.pub"), pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return res.Ref, dir
}

func writeExec(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry-host")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var appServingRE = regexp.MustCompile(`^ferry-host app: serving \S+ on (http://\S+), health on (http://\S+)$`)

// runAppMode runs argv app ... for ref as a pod does (with only the
// image's environment, env), waits for /readyz
// 200, checks the app's answer, and stops it with SIGTERM (exit 0).
func runAppMode(t *testing.T, argv, env []string, ref, trust string) {
	t.Helper()
	cmd := exec.Command(argv[0], append(argv[1:], "app", "--ref", ref, "--trust-key", trust,
		"--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--state-dir", t.TempDir())...)
	cmd.Env = env // the image's environment, nothing else
	proc, m := testenv.StartProcess(t, cmd, appServingRE, 2*time.Minute)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := get(m[2] + "/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get(m[1] + "/"); code != 200 || !strings.Contains(body, "Hello from WAT on ferry!") {
		t.Fatalf("GET / = %d %q", code, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Within(t, proc.Done, "exit after SIGTERM"); err != nil {
		t.Fatalf("exit %v after SIGTERM:\n%s", err, proc.Stderr.String())
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
