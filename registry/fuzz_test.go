package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-wasm/ferry/deploy"
)

// fuzzApp packs a small two-component app whose manifest and config seed
// the OCI fuzz targets.
func fuzzApp(tb testing.TB) *Packed {
	tb.Helper()
	def := "hi"
	app := deploy.App{
		Name: "hello", Hosts: []string{"hello.test"},
		Variables: map[string]deploy.Variable{"greeting": {Default: &def}, "token": {Secret: true}},
		Components: []deploy.Component{
			{Name: "web", Routes: []string{"/..."}, Env: map[string]string{"MODE": "prod"}},
			{Name: "api", Executor: deploy.ExecutorReactor, Routes: []string{"/api/..."}, Variables: map[string]string{"g": "{{ greeting }}"}},
		},
	}
	mod := func(s string) []byte { return append([]byte("\x00asm\x01\x00\x00\x00"), s...) }
	p, err := Pack(app, map[string][]byte{"web": mod("web"), "api": mod("api")}, PackOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FuzzParseApp feeds arbitrary manifest and config bytes to parseApp, the
// check every pull runs on what a registry returns. It must never panic;
// a pair it accepts must re-encode to a pair it accepts again, with the
// same app and the same files layers (decode→encode→decode is stable).
//
//	go test ./registry -run '^$' -fuzz FuzzParseApp -fuzztime 60s
func FuzzParseApp(f *testing.F) {
	p := fuzzApp(f)
	f.Add(p.ManifestJSON, p.ConfigJSON)
	f.Add(p.ManifestJSON, []byte(nil))
	f.Add(p.Components[0].ManifestJSON, p.Components[0].ConfigJSON)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, man, cfg []byte) {
		d := digest.FromBytes(man)
		m, app, files, err := parseApp(d, man, cfg)
		if err != nil {
			return
		}
		man2, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("an accepted manifest does not encode: %v", err)
		}
		var cfg2 []byte
		if cfg != nil {
			if cfg2, err = json.Marshal(app); err != nil {
				t.Fatalf("an accepted config does not encode: %v", err)
			}
		}
		_, app2, files2, err := parseApp(digest.FromBytes(man2), man2, cfg2)
		if err != nil {
			t.Fatalf("re-encoded artifact refused: %v\n%s\n%s", err, man2, cfg2)
		}
		if cfg != nil && !reflect.DeepEqual(app, app2) {
			t.Fatalf("app changed on re-encoding:\n%+v\n%+v", app, app2)
		}
		if !reflect.DeepEqual(files, files2) {
			t.Fatalf("files layers changed on re-encoding: %v, %v", files, files2)
		}
	})
}

// hostileRegistry is a loopback registry that serves whatever the fuzzer
// sets: one manifest (by its digest, with the media type given) and one
// blob, plus fixed blobs (the seed app's modules, so that a pull can
// succeed); everything else is 404.
type hostileRegistry struct {
	fixed     map[string][]byte // by digest
	mu        sync.Mutex
	mediaType string
	manifest  []byte
	blob      []byte
}

func (h *hostileRegistry) set(mediaType string, manifest, blob []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mediaType, h.manifest, h.blob = mediaType, manifest, blob
}

func (h *hostileRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	mt, man, blob := h.mediaType, h.manifest, h.blob
	h.mu.Unlock()
	serve := func(ct string, b []byte) {
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(b).String())
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			return
		}
		w.Write(b)
	}
	switch {
	case r.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/v2/fz/manifests/"+digest.FromBytes(man).String():
		serve(mt, man)
	case r.URL.Path == "/v2/fz/blobs/"+digest.FromBytes(blob).String():
		serve("application/octet-stream", blob)
	case r.URL.Path == "/v2/fz/blobs/"+digest.FromBytes(man).String():
		serve("application/octet-stream", man)
	case strings.HasPrefix(r.URL.Path, "/v2/fz/blobs/") && h.fixed[strings.TrimPrefix(r.URL.Path, "/v2/fz/blobs/")] != nil:
		serve("application/octet-stream", h.fixed[strings.TrimPrefix(r.URL.Path, "/v2/fz/blobs/")])
	default:
		http.NotFound(w, r)
	}
}

// FuzzInspect serves arbitrary manifests (as an OCI manifest, an OCI index
// or a Docker manifest list, chosen by kind) and one arbitrary blob from a
// hostile loopback registry, then runs Inspect (and WriteText) and PullApp
// on them with a real Client. Neither may panic; a pull that succeeds must
// have checked what it returns (its digest is the manifest's, each module
// hashes to its component's digest).
//
//	go test ./registry -run '^$' -fuzz FuzzInspect -fuzztime 60s
func FuzzInspect(f *testing.F) {
	p := fuzzApp(f)
	f.Add(uint8(0), p.ManifestJSON, p.ConfigJSON)
	f.Add(uint8(0), p.Components[1].ManifestJSON, p.Components[1].ConfigJSON)
	f.Add(uint8(1), []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}]}`), []byte(nil))
	f.Add(uint8(2), []byte(`{"schemaVersion":2,"manifests":null}`), []byte(`{}`))
	f.Add(uint8(0), []byte(`{"schemaVersion":2,"artifactType":"application/vnd.ferry.app.v1+json","config":{"mediaType":"application/vnd.ferry.app.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1}}`), []byte(`{}`))
	hostile := &hostileRegistry{fixed: map[string][]byte{}}
	for _, b := range p.Blobs() {
		hostile.fixed[b.Desc.Digest.String()] = b.Data
	}
	srv := httptest.NewServer(hostile)
	f.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := New(Options{CacheDir: f.TempDir(), NoDockerConfig: true})
	if err != nil {
		f.Fatal(err)
	}
	kinds := []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json"}
	f.Fuzz(func(t *testing.T, kind uint8, man, blob []byte) {
		hostile.set(kinds[int(kind)%len(kinds)], man, blob)
		d := digest.FromBytes(man)
		ref := addr + "/fz@" + d.String()
		ctx := context.Background()
		if in, err := c.Inspect(ctx, ref); err == nil {
			if in.Digest != d {
				t.Fatalf("Inspect digest %s, want %s", in.Digest, d)
			}
			var out bytes.Buffer
			if err := in.WriteText(&out); err != nil {
				t.Fatalf("WriteText: %v", err)
			}
		}
		pulled, err := c.PullApp(ctx, ref)
		if err != nil {
			return
		}
		if pulled.Digest != d {
			t.Fatalf("pulled %s, asked for %s", pulled.Digest, d)
		}
		for _, comp := range pulled.App.Components {
			mod, err := pulled.Module(comp.Name)
			if err != nil {
				t.Fatalf("pulled app lacks module %s: %v", comp.Name, err)
			}
			if got := digest.FromBytes(mod).String(); got != comp.Digest {
				t.Fatalf("module %s hashes to %s, want %s", comp.Name, got, comp.Digest)
			}
		}
	})
}
