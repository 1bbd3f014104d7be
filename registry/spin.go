package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferry-wasm/ferry/deploy"
)

// Media types of a Spin OCI app (what `spin registry push` writes and
// SpinKube's containerd-shim-spin runs).
const (
	// MediaTypeSpinConfig is the config media type of a Spin app
	// manifest: a locked Spin app (JSON).
	MediaTypeSpinConfig = "application/vnd.fermyon.spin.application.v1+config"
	// MediaTypeSpinWasmLayer is the media type of a Spin app's Wasm
	// component layer.
	MediaTypeSpinWasmLayer = "application/vnd.wasm.content.layer.v1+wasm"
)

// ErrSpinUnsupported is wrapped by the error of an app that cannot be made
// a Spin app (a reactor component, a component with files). Retrying does
// not help.
var ErrSpinUnsupported = errors.New("app cannot run as a Spin app")

// SpinImage is the Spin OCI app made of a ferry app (see SpinImageFor).
type SpinImage struct {
	// Ref is "HOST/REPO@sha256:..." of the Spin app manifest, in the
	// repository of the ferry artifact.
	Ref string
	// Manifest and Config are the manifest and the locked app; Layers are
	// the Wasm layers (the blobs of the ferry artifact, unchanged).
	Manifest, Config Blob
}

// locked is the locked Spin app (Spin's spin_locked_app::LockedApp), the
// part ferry writes.
type locked struct {
	SpinLockVersion int                  `json:"spin_lock_version"`
	Metadata        map[string]any       `json:"metadata,omitempty"`
	Variables       map[string]lockedVar `json:"variables,omitempty"`
	Triggers        []lockedTrigger      `json:"triggers"`
	Components      []lockedComponent    `json:"components"`
}

type lockedVar struct {
	Default *string `json:"default,omitempty"`
	Secret  bool    `json:"secret"`
}

type lockedTrigger struct {
	ID            string         `json:"id"`
	TriggerType   string         `json:"trigger_type"`
	TriggerConfig map[string]any `json:"trigger_config"`
}

type lockedComponent struct {
	ID       string            `json:"id"`
	Metadata map[string]any    `json:"metadata,omitempty"`
	Source   lockedSource      `json:"source"`
	Env      map[string]string `json:"env,omitempty"`
	Files    []any             `json:"files"`
	Config   map[string]string `json:"config,omitempty"`
}

type lockedSource struct {
	ContentType string            `json:"content_type"`
	Content     map[string]string `json:"content"`
}

// SpinLocked returns the locked Spin app of app (whose components carry
// their layer digests): one HTTP trigger per route of each component, run
// by Spin's WAGI executor (ferry's default executor is WAGI's ABI); the
// component's source is its layer digest, as in Spin's OCI layout.
// Reactor components and components with files are ErrSpinUnsupported.
func SpinLocked(app deploy.App) ([]byte, error) {
	l := locked{SpinLockVersion: 1, Metadata: map[string]any{"name": app.Name, "trigger": map[string]any{"type": "http"}},
		Triggers: []lockedTrigger{}, Components: []lockedComponent{}}
	if len(app.Variables) > 0 {
		l.Variables = map[string]lockedVar{}
		for name, v := range app.Variables {
			l.Variables[name] = lockedVar{Default: v.Default, Secret: v.Secret}
		}
	}
	for _, c := range app.Components {
		switch {
		case c.Executor == deploy.ExecutorReactor:
			return nil, fmt.Errorf("registry: %w: component %q of app %s uses ferry's reactor executor, which Spin does not run (Spin runs WAGI modules: use executor \"wagi\")", ErrSpinUnsupported, c.Name, app.Name)
		case len(c.Files) > 0:
			return nil, fmt.Errorf("registry: %w: component %q of app %s declares files, which ferry does not put in Spin apps yet", ErrSpinUnsupported, c.Name, app.Name)
		case c.Digest == "":
			return nil, fmt.Errorf("registry: %w: component %q of app %s has no layer digest", ErrInvalidApp, c.Name, app.Name)
		}
		meta := map[string]any{"allowed_outbound_hosts": nonNil(c.AllowedOutboundHosts)}
		if len(c.KeyValueStores) > 0 {
			meta["key_value_stores"] = c.KeyValueStores
		}
		l.Components = append(l.Components, lockedComponent{
			ID: c.Name, Metadata: meta,
			Source: lockedSource{ContentType: "application/wasm", Content: map[string]string{"digest": c.Digest}},
			Env:    c.Env, Files: []any{}, Config: c.Variables,
		})
		for i, r := range c.Routes {
			l.Triggers = append(l.Triggers, lockedTrigger{
				ID: fmt.Sprintf("trigger-%s-%d", c.Name, i), TriggerType: "http",
				TriggerConfig: map[string]any{"component": c.Name, "route": r, "executor": map[string]any{"type": "wagi"}},
			})
		}
	}
	return json.Marshal(l) // maps marshal with sorted keys: deterministic
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// spinManifest returns the Spin app manifest of an app manifest man and
// its decoded config app.
func spinManifest(man ocispec.Manifest, app deploy.App) (manifest, config Blob, err error) {
	cfg, err := SpinLocked(app)
	if err != nil {
		return Blob{}, Blob{}, err
	}
	config = Blob{Desc: ocispec.Descriptor{MediaType: MediaTypeSpinConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}, Data: cfg}
	sizes := map[string]int64{}
	for _, l := range man.Layers {
		if l.MediaType == MediaTypeWasmLayer {
			sizes[l.Digest.String()] = l.Size
		}
	}
	var layers []ocispec.Descriptor
	seen := map[string]bool{}
	for _, c := range app.Components {
		if seen[c.Digest] {
			continue // two components of one module: one layer
		}
		seen[c.Digest] = true
		layers = append(layers, ocispec.Descriptor{MediaType: MediaTypeSpinWasmLayer, Digest: digest.Digest(c.Digest), Size: sizes[c.Digest]})
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config.Desc, Layers: layers,
		Annotations: map[string]string{ocispec.AnnotationTitle: app.Name},
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return Blob{}, Blob{}, err
	}
	manifest = Blob{Desc: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mj), Size: int64(len(mj))}, Data: mj}
	return manifest, config, nil
}

// SpinImageFor returns the Spin OCI app of the ferry app ref names,
// without pushing it: the app manifest and config are read from the
// registry (nothing else is downloaded), and the same app always gives
// the same digest. With push, the locked app config and the manifest
// are pushed (by digest, untagged) to the artifact's repository, each
// only if missing; the Wasm layers are the artifact's own blobs, already
// there.
func (c *Client) SpinImageFor(ctx context.Context, ref string, push bool) (*SpinImage, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.ref() == "" {
		return nil, fmt.Errorf("registry: %w %q: names no tag or digest", ErrInvalidReference, ref)
	}
	rp, err := c.repository(r)
	if err != nil {
		return nil, err
	}
	d := r.Digest
	if d == "" {
		desc, err := c.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		d = desc.Digest
	}
	_, rc, err := rp.FetchReference(ctx, d.String())
	if err != nil {
		return nil, &BlobError{Role: "app manifest", Digest: d, Err: classify(err)}
	}
	manJSON, err := readVerified(rc, ocispec.Descriptor{Digest: d, Size: -1})
	rc.Close()
	if err != nil {
		return nil, &BlobError{Role: "app manifest", Digest: d, Err: err}
	}
	man, _, _, err := parseApp(d, manJSON, nil)
	if err != nil {
		return nil, err
	}
	cfgJSON, err := fetchVerified(ctx, rp, man.Config)
	if err != nil {
		return nil, &BlobError{Role: "app config", Digest: man.Config.Digest, Err: err}
	}
	_, app, _, err := parseApp(d, manJSON, cfgJSON)
	if err != nil {
		return nil, err
	}
	mb, cb, err := spinManifest(man, app)
	if err != nil {
		return nil, err
	}
	img := &SpinImage{Ref: r.WithDigest(mb.Desc.Digest).String(), Manifest: mb, Config: cb}
	if push {
		for _, b := range []Blob{cb, mb} {
			if _, err := c.pushOne(ctx, rp, b); err != nil {
				return nil, fmt.Errorf("registry: pushing the Spin app of %s: %w", r, err)
			}
		}
		c.log.DebugContext(ctx, "spin app pushed", "ref", img.Ref)
	}
	return img, nil
}
