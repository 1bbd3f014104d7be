package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
)

// Media types of the CNCF Wasm OCI layout, which ferry's artifacts use.
const (
	wasmConfigType = "application/vnd.wasm.config.v0+json"
	wasmLayerType  = "application/wasm"
)

// artifact is a Wasm artifact pushed to a test registry.
type artifact struct {
	Repo   string             // host:port/name
	Digest string             // sha256:...
	Layer  ocispec.Descriptor // the wasm layer
	Config ocispec.Descriptor
}

// Ref is REPO@DIGEST.
func (a artifact) Ref() string { return a.Repo + "@" + a.Digest }

// pushWasm pushes a CNCF-layout Wasm artifact (config + one application/wasm
// layer) with oras-go, tags it if tag is not empty, and returns it.
func pushWasm(t testing.TB, repoRef string, wasm []byte, tag string) artifact {
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	cfg := []byte(`{"architecture":"wasm","os":"wasip1"}`)
	cfgDesc, err := oras.PushBytes(ctx, repo, wasmConfigType, cfg)
	if err != nil {
		t.Fatalf("push config: %v", err)
	}
	layer, err := oras.PushBytes(ctx, repo, wasmLayerType, wasm)
	if err != nil {
		t.Fatalf("push layer: %v", err)
	}
	man, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "", oras.PackManifestOptions{
		ConfigDescriptor: &cfgDesc,
		Layers:           []ocispec.Descriptor{layer},
	})
	if err != nil {
		t.Fatalf("push manifest: %v", err)
	}
	if tag != "" {
		if err := repo.Tag(ctx, man, tag); err != nil {
			t.Fatalf("tag: %v", err)
		}
	}
	return artifact{Repo: repoRef, Digest: man.Digest.String(), Layer: layer, Config: cfgDesc}
}

// pushIndex pushes an OCI image index over the given artifacts.
func pushIndex(t testing.TB, repoRef string, parts ...artifact) artifact {
	t.Helper()
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, p := range parts {
		d, err := repo.Resolve(context.Background(), p.Digest)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := oras.PushBytes(context.Background(), repo, ocispec.MediaTypeImageIndex, b)
	if err != nil {
		t.Fatalf("push index: %v", err)
	}
	return artifact{Repo: repoRef, Digest: desc.Digest.String()}
}

// copyTag points tag dst at whatever src points to (for example a .sig
// manifest), as an attacker with push rights could.
func copyTag(t testing.TB, repoRef, src, dst string) {
	t.Helper()
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if _, err := oras.Tag(context.Background(), repo, src, dst); err != nil {
		t.Fatalf("tag %s -> %s: %v", src, dst, err)
	}
}

// sigTag is cosign's signature tag for a digest.
func sigTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".sig"
}

// wasmModule returns a small valid Wasm module whose custom section holds
// tag, so different tags give different digests.
func wasmModule(tag string) []byte {
	b := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	payload := append([]byte{byte(len("ferry"))}, "ferry"...)
	payload = append(payload, tag...)
	b = append(b, 0x00, byte(len(payload)))
	return append(b, payload...)
}

// tamperProxy is a reverse proxy on loopback in front of a registry that
// replaces the body of chosen GET responses, as a compromised registry or a
// man in the middle would.
type tamperProxy struct {
	Addr string
	mu   sync.Mutex
	subs map[string][]byte // URL path -> replacement body
}

func newTamperProxy(t testing.TB, upstream string) *tamperProxy {
	t.Helper()
	p := &tamperProxy{subs: map[string][]byte{}}
	u, _ := url.Parse("http://" + upstream)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet {
			return nil
		}
		p.mu.Lock()
		body, ok := p.subs[resp.Request.URL.Path]
		p.mu.Unlock()
		if !ok {
			return nil
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	p.Addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Replace makes GET path answer body.
func (p *tamperProxy) Replace(path string, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs[path] = body
}

// fetchRaw GETs a registry URL path and returns the body.
func fetchRaw(t testing.TB, addr, path, accept string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %s", path, err, resp.Status)
	}
	return b
}

// testKey makes an in-memory ECDSA P-256 key. It skips the encrypted file
// format (scrypt costs about half a second per key); that format is tested
// in keys_test.go and against cosign in interop_test.go.
func testKey(t testing.TB, name string) (*PrivateKey, Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &PrivateKey{sv: sv, pub: &priv.PublicKey}, Key{Name: name, Public: &priv.PublicKey}
}

// newCosign runs the real cosign VERSION offline (see testenv.Cosign).
func newCosign(t testing.TB, version, password string) *testenv.Cosign {
	t.Helper()
	return testenv.NewCosign(t, version, password)
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
