package registry_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPackLayout(t *testing.T) {
	app, modules := testApp("v1")
	p, err := registry.Pack(app, modules, registry.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(p.ManifestJSON, &man); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != ocispec.MediaTypeImageManifest || man.ArtifactType != registry.ArtifactTypeApp ||
		man.Config.MediaType != registry.MediaTypeAppConfig {
		t.Errorf("app manifest types: %q %q %q", man.MediaType, man.ArtifactType, man.Config.MediaType)
	}
	if got := digest.FromBytes(p.ManifestJSON); got != p.Manifest.Digest {
		t.Errorf("manifest digest %s, content is %s", p.Manifest.Digest, got)
	}
	if len(man.Layers) != 2 {
		t.Fatalf("%d layers, want 2", len(man.Layers))
	}
	for i, l := range man.Layers {
		c := p.Components[i]
		want := ocispec.Descriptor{MediaType: registry.MediaTypeWasmLayer, Digest: digest.FromBytes(modules[c.Name]),
			Size: int64(len(modules[c.Name])), Annotations: map[string]string{
				ocispec.AnnotationTitle:              c.Name,
				registry.AnnotationComponentManifest: c.Manifest.Digest.String(),
			}}
		if diff := cmp.Diff(want, l); diff != "" {
			t.Errorf("layer %d (-want +got):\n%s", i, diff)
		}
	}

	// The config is the app, digests set, secrets without values.
	var stored deploy.App
	if err := json.Unmarshal(p.ConfigJSON, &stored); err != nil {
		t.Fatal(err)
	}
	wantApp := app
	wantApp.Components = append([]deploy.Component(nil), app.Components...)
	for i := range wantApp.Components {
		wantApp.Components[i].Digest = digest.FromBytes(modules[wantApp.Components[i].Name]).String()
	}
	if diff := cmp.Diff(wantApp, stored); diff != "" {
		t.Errorf("stored app (-want +got):\n%s", diff)
	}
	if app.Components[0].Digest != "" {
		t.Error("Pack wrote into the caller's app")
	}

	// Each component is a CNCF Wasm artifact.
	for _, c := range p.Components {
		var cm ocispec.Manifest
		if err := json.Unmarshal(c.ManifestJSON, &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Config.MediaType != registry.MediaTypeWasmConfig || len(cm.Layers) != 1 ||
			cm.Layers[0].MediaType != registry.MediaTypeWasmLayer || cm.Layers[0].Digest != c.Layer.Digest ||
			cm.Layers[0].Annotations[ocispec.AnnotationTitle] != c.Name+".wasm" {
			t.Errorf("component %s manifest: %s", c.Name, c.ManifestJSON)
		}
		var raw map[string]any
		if err := json.Unmarshal(c.ConfigJSON, &raw); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"created": "1970-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip1",
			"layerDigests": []any{c.Layer.Digest.String()}}
		if diff := cmp.Diff(want, raw); diff != "" {
			t.Errorf("component %s config (-want +got):\n%s", c.Name, diff)
		}
	}
	if n := len(p.Blobs()); n != 5 { // 2 layers, 2 wasm configs, 1 app config
		t.Errorf("%d blobs, want 5", n)
	}
}

func TestPackDeterministic(t *testing.T) {
	a1, m1 := testApp("v1")
	p1, err := registry.Pack(a1, m1, registry.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // maps iterate in a new order each time
		a2, m2 := testApp("v1")
		p2, err := registry.Pack(a2, m2, registry.PackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p1.Manifest.Digest != p2.Manifest.Digest || string(p1.ConfigJSON) != string(p2.ConfigJSON) {
			t.Fatalf("run %d: digest %s != %s", i, p2.Manifest.Digest, p1.Manifest.Digest)
		}
	}
	changed := []struct {
		name string
		pack func() (*registry.Packed, error)
	}{
		{"module", func() (*registry.Packed, error) {
			a, m := testApp("v2")
			return registry.Pack(a, m, registry.PackOptions{})
		}},
		{"config", func() (*registry.Packed, error) {
			a, m := testApp("v1")
			a.Hosts = []string{"other.example.com"}
			return registry.Pack(a, m, registry.PackOptions{})
		}},
		{"created", func() (*registry.Packed, error) {
			a, m := testApp("v1")
			return registry.Pack(a, m, registry.PackOptions{Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)})
		}},
		{"annotation", func() (*registry.Packed, error) {
			a, m := testApp("v1")
			return registry.Pack(a, m, registry.PackOptions{Annotations: map[string]string{ocispec.AnnotationRevision: "abc"}})
		}},
	}
	for _, tc := range changed {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.pack()
			if err != nil {
				t.Fatal(err)
			}
			if p.Manifest.Digest == p1.Manifest.Digest {
				t.Errorf("changing the %s kept digest %s", tc.name, p.Manifest.Digest)
			}
		})
	}
}

func TestPackRefuses(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*deploy.App, map[string][]byte)
		wantErr error
		wantMsg string
	}{
		{"no name", func(a *deploy.App, _ map[string][]byte) { a.Name = "" }, registry.ErrInvalidApp, "no name"},
		{"no components", func(a *deploy.App, m map[string][]byte) {
			a.Components = nil
			clear(m)
		}, registry.ErrInvalidApp, "no components"},
		{"duplicate", func(a *deploy.App, _ map[string][]byte) { a.Components[1].Name = "web" }, registry.ErrInvalidApp, `"web" appears twice`},
		{"missing module", func(_ *deploy.App, m map[string][]byte) { delete(m, "api") }, registry.ErrInvalidApp, `no Wasm module for component "api"`},
		{"extra module", func(_ *deploy.App, m map[string][]byte) { m["ghost"] = []byte("x") }, registry.ErrInvalidApp, `unknown component "ghost"`},
		{"path in name", func(a *deploy.App, m map[string][]byte) {
			a.Components[0].Name = "../web"
			m["../web"] = m["web"]
			delete(m, "web")
		}, registry.ErrInvalidApp, "path separator"},
		{"wrong digest", func(a *deploy.App, _ map[string][]byte) {
			a.Components[0].Digest = digest.FromString("other").String()
		}, registry.ErrInvalidApp, "has digest"},
		{"secret value", func(a *deploy.App, _ map[string][]byte) {
			a.Variables["token"] = deploy.Variable{Secret: true, Default: str("hunter2")}
		}, registry.ErrSecretValue, `secret variable "token" carries a value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, modules := testApp("v1")
			app.Variables = map[string]deploy.Variable{"token": {Secret: true}}
			tc.edit(&app, modules)
			_, err := registry.Pack(app, modules, registry.PackOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	d := digest.FromString("x")
	tests := []struct {
		in      string
		want    registry.Reference
		wantErr string
	}{
		{in: "127.0.0.1:5000/apps/hello:v1", want: registry.Reference{Registry: "127.0.0.1:5000", Repository: "apps/hello", Tag: "v1"}},
		{in: "localhost/hello", want: registry.Reference{Registry: "localhost", Repository: "hello"}},
		{in: "ghcr.io/acme/hello@" + d.String(), want: registry.Reference{Registry: "ghcr.io", Repository: "acme/hello", Digest: d}},
		{in: "ghcr.io/acme/hello:v1@" + d.String(), want: registry.Reference{Registry: "ghcr.io", Repository: "acme/hello", Digest: d}},
		{in: "[::1]:5000/hello:latest", want: registry.Reference{Registry: "[::1]:5000", Repository: "hello", Tag: "latest"}},
		{in: "", wantErr: "empty reference"},
		{in: "hello:v1", wantErr: "missing registry host"},
		{in: "acme/hello", wantErr: `"acme" is not a registry host`},
		{in: "ghcr.io/Acme/hello", wantErr: "invalid reference"},
		{in: "ghcr.io/acme/hello@sha256:abc", wantErr: "invalid reference"},
		{in: "ghcr.io/acme/hello:v 1", wantErr: "white space"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := registry.ParseReference(tc.in)
			if tc.wantErr != "" {
				if !errors.Is(err, registry.ErrInvalidReference) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidReference containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if _, err := registry.ParseReference(got.String()); err != nil {
				t.Errorf("String() %q does not parse: %v", got.String(), err)
			}
		})
	}
	loop := []struct {
		in   string
		want bool
	}{{"127.0.0.1:5000/a", true}, {"localhost:1/a", true}, {"[::1]:5000/a", true}, {"127.1.2.3:80/a", true},
		{"10.0.0.1:5000/a", false}, {"ghcr.io/a", false}, {"localhost.evil.com/a", false}}
	for _, tc := range loop {
		r, err := registry.ParseReference(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if r.IsLoopback() != tc.want {
			t.Errorf("%s: IsLoopback = %v", tc.in, !tc.want)
		}
	}
}
