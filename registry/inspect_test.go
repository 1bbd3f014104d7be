package registry_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestInspect(t *testing.T) {
	ctx := context.Background()
	addr := startServer(t).Addr()
	c := newClient(t, registry.Options{})
	app, modules := testApp("v1")
	res, err := c.PushApp(ctx, addr+"/apps/hello:v1", app, modules, registry.PushOptions{
		Pack: registry.PackOptions{Annotations: map[string]string{ocispec.AnnotationRevision: "0123abc"}},
	})
	if err != nil {
		t.Fatal(err)
	}

	in, err := c.Inspect(ctx, addr+"/apps/hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != registry.KindApp || in.Digest != res.Digest || in.ArtifactType != registry.ArtifactTypeApp ||
		in.App == nil || in.App.Name != "hello" || in.Annotations[ocispec.AnnotationRevision] != "0123abc" {
		t.Errorf("app inspection: %+v", in)
	}
	if len(in.Layers) != 2 || in.Layers[0].Title != "web" || in.Layers[1].Title != "api" ||
		in.Layers[1].Size != int64(len(modules["api"])) || in.Layers[1].MediaType != registry.MediaTypeWasmLayer {
		t.Errorf("layers: %+v", in.Layers)
	}
	if len(in.Signatures) != 0 {
		t.Errorf("unsigned app lists signatures %+v", in.Signatures)
	}

	// JSON: a stable, readable shape.
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ref", "digest", "kind", "config", "app", "layers", "signatures", "manifest"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, b)
		}
	}

	var text strings.Builder
	if err := in.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{res.Ref, "ferry-app", "token (secret)", `greeting = "hi"`, "web", "api",
		registry.MediaTypeWasmLayer, "Signatures: none found", "org.opencontainers.image.revision=0123abc"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}

	comp, err := c.Inspect(ctx, res.Components[1].Ref)
	if err != nil {
		t.Fatal(err)
	}
	if comp.Kind != registry.KindComponent || comp.Wasm == nil || comp.Wasm.OS != "wasip1" ||
		len(comp.Wasm.LayerDigests) != 1 || comp.Wasm.LayerDigests[0] != res.Components[1].Layer.String() ||
		comp.Layers[0].Title != "api.wasm" {
		t.Errorf("component inspection: %+v", comp)
	}
}
