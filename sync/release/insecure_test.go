package release_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/sync/release"
)

// loopbackAs returns a transport that reaches every "*.test" host at
// 127.0.0.1 (same port) and refuses any other address that is not
// loopback, so a test can use a registry name that is not a loopback name
// — which ferry reaches over HTTPS by default — while nothing leaves the
// machine.
func loopbackAs() *http.Transport {
	var d net.Dialer
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(h, ".test") {
			h = "127.0.0.1"
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("test dialer: %s is not loopback", addr)
		}
		return d.DialContext(ctx, network, net.JoinHostPort(h, p))
	}
	return tr
}

// TestSpecRegistryInsecure: registry { insecure = true } lets the release
// push and sign over plain HTTP to the spec's own registry host, with no
// client option or CLI flag; without it (the default), the same plain-HTTP
// registry is refused with ErrPlainHTTPRegistry and a message that says
// what to set; and the block's insecure does not carry over to a
// repository on another host.
func TestSpecRegistryInsecure(t *testing.T) {
	addr := testenv.Registry(t) // plain HTTP on 127.0.0.1
	_, port, _ := net.SplitHostPort(addr)
	name := "registry.test:" + port
	tr := loopbackAs()
	rc, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	pw := []byte("pw")
	priv, _, err := signer.GenerateKeyPair(pw)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.LoadPrivateKey(priv, pw)
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "hello-wat", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	doRelease := func(t *testing.T, registryBlock, repository string) (*release.Release, error) {
		t.Helper()
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"hello.wasm": string(wasm), "ferry.hcl": registryBlock + `
app "hello" {
  component "web" {
    wasm   = "./hello.wasm"
    routes = ["/..."]
  }
}
`}, nil)
		return release.BuildRelease(context.Background(), dir, "", release.ReleaseOptions{
			Builder: builder.New(builder.Options{CacheDir: t.TempDir()}), Registry: rc, Repository: repository, Key: key,
			Sign: signer.SignOptions{Registry: signer.RegistryOptions{Transport: tr}},
		})
	}

	t.Run("insecure", func(t *testing.T) {
		rel, err := doRelease(t, "registry {\n  repository = \""+name+"/ins\"\n  insecure   = true\n}\n", "")
		if err != nil {
			t.Fatalf("release with insecure = true: %v", err)
		}
		a := rel.Apps["hello"]
		if !a.Signed || !strings.HasPrefix(a.Ref, name+"/ins/hello@sha256:") {
			t.Fatalf("released %+v", a)
		}
		// The registry, read over loopback by another client, holds the
		// artifact and its signature.
		plain, err := registry.New(registry.Options{CacheDir: t.TempDir(), NoDockerConfig: true})
		if err != nil {
			t.Fatal(err)
		}
		if d, err := plain.Resolve(context.Background(), addr+"/ins/hello@"+a.Digest); err != nil || d.Digest.String() != a.Digest {
			t.Errorf("resolve %s: %v, %v", a.Digest, d.Digest, err)
		}
		if _, err := plain.Resolve(context.Background(), addr+"/ins/hello:sha256-"+strings.TrimPrefix(a.Digest, "sha256:")+".sig"); err != nil {
			t.Errorf("signature not in the registry: %v", err)
		}
	})
	t.Run("default", func(t *testing.T) {
		_, err := doRelease(t, "registry {\n  repository = \""+name+"/def\"\n}\n", "")
		if !errors.Is(err, release.ErrPlainHTTPRegistry) || !strings.Contains(err.Error(), name+" answered an HTTPS request with plain HTTP") ||
			!strings.Contains(err.Error(), "set insecure = true in the spec's registry block") {
			t.Fatalf("release without insecure: %v; want ErrPlainHTTPRegistry naming the host and the setting", err)
		}
	})
	t.Run("other host", func(t *testing.T) {
		_, err := doRelease(t, "registry {\n  repository = \""+name+"/ins\"\n  insecure   = true\n}\n", "elsewhere.test:"+port+"/x")
		if !errors.Is(err, release.ErrPlainHTTPRegistry) {
			t.Fatalf("release to another host: %v; want ErrPlainHTTPRegistry (insecure is for the block's host only)", err)
		}
	})
}
