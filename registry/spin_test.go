package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
)

// TestSpinImage makes the Spin app of a pushed ferry app against a real
// registry: computed without writing, pushed by digest to the same
// repository, the same digest both ways, nothing written when pushed
// again, and the layout read back by the real oras CLI.
func TestSpinImage(t *testing.T) {
	ctx := context.Background()
	px := startProxy(t, testenv.Registry(t))
	c := newClient(t, registry.Options{})
	app, mods := testApp("v1")
	app.Components[1].Executor = deploy.ExecutorWAGI
	res, err := c.PushApp(ctx, px.Addr+"/apps/hello", app, mods, registry.PushOptions{Tags: []string{"v1"}})
	if err != nil {
		t.Fatal(err)
	}
	px.reset()
	dry, err := c.SpinImageFor(ctx, px.Addr+"/apps/hello:v1", false)
	if err != nil {
		t.Fatal(err)
	}
	if px.writes() != 0 {
		t.Fatalf("computing the Spin image wrote %d requests", px.writes())
	}
	if _, err := c.Resolve(ctx, dry.Ref); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Spin image present before push: %v", err)
	}
	img, err := c.SpinImageFor(ctx, res.Ref, true)
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != dry.Ref || !strings.HasPrefix(img.Ref, px.Addr+"/apps/hello@sha256:") {
		t.Fatalf("pushed %s, computed %s", img.Ref, dry.Ref)
	}
	px.reset()
	if _, err := c.SpinImageFor(ctx, res.Ref, true); err != nil || px.writes() != 0 {
		t.Fatalf("pushing again: %v, %d writes", err, px.writes())
	}

	// The real oras CLI reads the manifest back.
	oras := testenv.Tool(t, "oras-v1.3.6")
	out, err := exec.Command(oras, "manifest", "fetch", "--plain-http", img.Ref).CombinedOutput()
	if err != nil {
		t.Fatalf("oras manifest fetch: %v\n%s", err, out)
	}
	var man struct {
		Config struct{ MediaType, Digest string }
		Layers []struct{ MediaType, Digest string }
	}
	if err := json.Unmarshal(out, &man); err != nil {
		t.Fatal(err)
	}
	if man.Config.MediaType != registry.MediaTypeSpinConfig || len(man.Layers) != 2 ||
		man.Layers[0].MediaType != registry.MediaTypeSpinWasmLayer || man.Layers[0].Digest != res.App.Components[0].Digest ||
		man.Layers[1].Digest != res.App.Components[1].Digest {
		t.Fatalf("Spin manifest %s", out)
	}
	var lk map[string]any
	if err := json.Unmarshal(img.Config.Data, &lk); err != nil {
		t.Fatal(err)
	}
	trig := lk["triggers"].([]any)
	if len(trig) != 2 || trig[1].(map[string]any)["trigger_config"].(map[string]any)["route"] != "/api/..." {
		t.Errorf("triggers %v", trig)
	}
}

func TestSpinLockedRefuses(t *testing.T) {
	app, _ := testApp("v1")
	for i := range app.Components {
		app.Components[i].Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	}
	if _, err := registry.SpinLocked(app); !errors.Is(err, registry.ErrSpinUnsupported) || !strings.Contains(err.Error(), `component "api" of app hello uses ferry's reactor executor`) {
		t.Fatalf("reactor: %v", err)
	}
	app.Components[1].Executor = ""
	app.Components[0].Files = []string{"static/"}
	if _, err := registry.SpinLocked(app); !errors.Is(err, registry.ErrSpinUnsupported) || !strings.Contains(err.Error(), `component "web" of app hello declares files`) {
		t.Fatalf("files: %v", err)
	}
	app.Components[0].Files = nil
	a, err := registry.SpinLocked(app)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := registry.SpinLocked(app)
	if string(a) != string(b) || strings.Contains(string(a), "token\":{\"default") {
		t.Fatalf("locked app not deterministic or holds a secret default: %s", a)
	}
}
