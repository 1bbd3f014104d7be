package registry

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/ferry-wasm/ferry/deploy"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types and annotations of the layout described in LAYOUT.md.
const (
	// MediaTypeWasmConfig is the config media type of a CNCF Wasm artifact.
	MediaTypeWasmConfig = "application/vnd.wasm.config.v0+json"
	// MediaTypeWasmLayer is the media type of a Wasm module layer.
	MediaTypeWasmLayer = "application/wasm"
	// ArtifactTypeApp is the artifactType of a ferry app manifest.
	ArtifactTypeApp = "application/vnd.ferry.app.v1+json"
	// MediaTypeAppConfig is the media type of an app manifest's config blob,
	// the JSON form of deploy.App.
	MediaTypeAppConfig = "application/vnd.ferry.app.config.v1+json"
	// AnnotationComponentManifest, on an app manifest's layer, is the digest
	// of that component's own CNCF Wasm manifest in the same repository.
	AnnotationComponentManifest = "vnd.ferry.component.manifest"
	// WasmArchitecture and WasmOS are the CNCF Wasm config's architecture
	// and os: ferry runs WASI preview 1 core modules.
	WasmArchitecture = "wasm"
	WasmOS           = "wasip1"
)

// WasmConfig is the config blob of a component artifact
// (MediaTypeWasmConfig), following the CNCF TAG Runtime Wasm OCI artifact
// layout.
type WasmConfig struct {
	// Created is fixed (the Unix epoch unless PackOptions.Created is set) so
	// that the same module always gives the same digest.
	Created time.Time `json:"created"`
	// Author is optional.
	Author string `json:"author,omitempty"`
	// Architecture is always "wasm".
	Architecture string `json:"architecture"`
	// OS is "wasip1" for core modules.
	OS string `json:"os"`
	// LayerDigests lists the manifest's layer digests in order.
	LayerDigests []string `json:"layerDigests"`
	// Component describes a Wasm component (os "wasip2"); ferry's core
	// modules leave it out.
	Component *WasmComponent `json:"component,omitempty"`
}

// WasmComponent is the optional "component" field of WasmConfig.
type WasmComponent struct {
	// Exports are the component's exported interfaces.
	Exports []string `json:"exports"`
	// Imports are the component's imported interfaces.
	Imports []string `json:"imports"`
	// Target optionally names the component's world.
	Target string `json:"target,omitempty"`
}

// PackOptions tune Pack. The zero value packs with the defaults.
type PackOptions struct {
	// Created is the "created" time written in every component config.
	// Zero means the Unix epoch, which keeps digests reproducible; a commit
	// time is also fine.
	Created time.Time
	// Author is written in every component config; empty leaves it out.
	Author string
	// Annotations are added to the app manifest (for example
	// "org.opencontainers.image.revision" = the git commit). They must not
	// change between builds of the same input, or digests will. The key
	// "org.opencontainers.image.title" is set to the app name unless given.
	Annotations map[string]string
	// Files gives, for each component that declares Files, the file tree
	// its declared paths are read from (os.DirFS of the spec directory,
	// for instance); only the declared paths are packed, into one files
	// layer per component (see PackFiles and LAYOUT.md). A component that
	// declares files needs a tree here; a tree for a component that
	// declares none is refused. Nil means no component has files.
	Files map[string]fs.FS
	// MaxFilesBytes caps each component's files layer. Zero means
	// DefaultMaxFilesBytes (64 MiB).
	MaxFilesBytes int64
}

// Packed holds the documents and blobs of one app in the layout of
// LAYOUT.md, ready to push. All digests are final.
type Packed struct {
	// App is the app as stored in the config blob (component digests set).
	App deploy.App
	// Manifest describes the app manifest; ManifestJSON is its content.
	Manifest     ocispec.Descriptor
	ManifestJSON []byte
	// Config describes the app config blob; ConfigJSON is its content.
	Config     ocispec.Descriptor
	ConfigJSON []byte
	// Components are the component artifacts, in app order.
	Components []PackedComponent
}

// PackedComponent is one component's CNCF Wasm artifact.
type PackedComponent struct {
	// Name is the component name.
	Name string
	// Layer describes the Wasm module blob; Wasm is its content.
	Layer ocispec.Descriptor
	Wasm  []byte
	// Config describes the WasmConfig blob; ConfigJSON is its content.
	Config     ocispec.Descriptor
	ConfigJSON []byte
	// Manifest describes the component manifest; ManifestJSON is its content.
	Manifest     ocispec.Descriptor
	ManifestJSON []byte
	// Files is the component's files layer (an app manifest layer only;
	// the CNCF Wasm artifact has no room for it); nil when the component
	// declares no files.
	Files *Blob
}

// Blob is a descriptor with its content.
type Blob struct {
	// Desc describes Data (media type, digest, size).
	Desc ocispec.Descriptor
	// Data is the content.
	Data []byte
}

// Blobs returns every distinct blob (not manifests) of p: the Wasm layers,
// the component configs and the app config, each once.
func (p *Packed) Blobs() []Blob {
	seen := map[digest.Digest]bool{}
	var out []Blob
	add := func(d ocispec.Descriptor, b []byte) {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, Blob{Desc: d, Data: b})
		}
	}
	for _, c := range p.Components {
		add(c.Layer, c.Wasm)
		add(c.Config, c.ConfigJSON)
		if c.Files != nil {
			add(c.Files.Desc, c.Files.Data)
		}
	}
	add(p.Config, p.ConfigJSON)
	return out
}

// Manifests returns the component manifests (each once) and then the app
// manifest, the order in which they must be pushed.
func (p *Packed) Manifests() []Blob {
	seen := map[digest.Digest]bool{}
	var out []Blob
	for _, c := range p.Components {
		if !seen[c.Manifest.Digest] {
			seen[c.Manifest.Digest] = true
			out = append(out, Blob{Desc: c.Manifest, Data: c.ManifestJSON})
		}
	}
	return append(out, Blob{Desc: p.Manifest, Data: p.ManifestJSON})
}

// Pack lays out app and its modules (Wasm bytes by component name) as OCI
// artifacts without touching any network, with the declared files of each
// component read from opts.Files. The same inputs always give the same
// bytes and digests. Each component's Digest is set from its module;
// a Digest already set must match. Errors wrap ErrInvalidApp (and
// ErrFilesTooLarge) or ErrSecretValue.
func Pack(app deploy.App, modules map[string][]byte, opts PackOptions) (*Packed, error) {
	if err := validateApp(app, modules); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Files)) {
		i := slices.IndexFunc(app.Components, func(c deploy.Component) bool { return c.Name == name })
		switch {
		case i < 0:
			return nil, fmt.Errorf("registry: %w: app %q: files given for unknown component %q", ErrInvalidApp, app.Name, name)
		case len(app.Components[i].Files) == 0 && opts.Files[name] != nil:
			return nil, fmt.Errorf("registry: %w: app %q: files given for component %q, which declares none", ErrInvalidApp, app.Name, name)
		}
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()

	p := &Packed{App: cloneApp(app)}
	layers := make([]ocispec.Descriptor, 0, len(app.Components))
	for i := range p.App.Components {
		c := &p.App.Components[i]
		wasm := modules[c.Name]
		layer := ocispec.Descriptor{MediaType: MediaTypeWasmLayer, Digest: digest.FromBytes(wasm), Size: int64(len(wasm))}
		if c.Digest != "" && c.Digest != layer.Digest.String() {
			return nil, fmt.Errorf("registry: %w: component %q has digest %s but its module is %s", ErrInvalidApp, c.Name, c.Digest, layer.Digest)
		}
		c.Digest = layer.Digest.String()

		cfg := WasmConfig{Created: created, Author: opts.Author, Architecture: WasmArchitecture, OS: WasmOS,
			LayerDigests: []string{layer.Digest.String()}}
		cfgJSON, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("registry: encoding config of %q: %w", c.Name, err)
		}
		cfgDesc := ocispec.Descriptor{MediaType: MediaTypeWasmConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
		compLayer := layer
		compLayer.Annotations = map[string]string{ocispec.AnnotationTitle: c.Name + ".wasm"}
		man := ocispec.Manifest{
			Versioned:   specs.Versioned{SchemaVersion: 2},
			MediaType:   ocispec.MediaTypeImageManifest,
			Config:      cfgDesc,
			Layers:      []ocispec.Descriptor{compLayer},
			Annotations: map[string]string{ocispec.AnnotationTitle: c.Name},
		}
		manJSON, err := json.Marshal(man)
		if err != nil {
			return nil, fmt.Errorf("registry: encoding manifest of %q: %w", c.Name, err)
		}
		manDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manJSON), Size: int64(len(manJSON))}
		files, err := packComponentFiles(app.Name, c, opts)
		if err != nil {
			return nil, err
		}
		p.Components = append(p.Components, PackedComponent{
			Name: c.Name, Layer: layer, Wasm: wasm,
			Config: cfgDesc, ConfigJSON: cfgJSON,
			Manifest: manDesc, ManifestJSON: manJSON,
			Files: files,
		})
		appLayer := layer
		appLayer.Annotations = map[string]string{
			ocispec.AnnotationTitle:     c.Name,
			AnnotationComponentManifest: manDesc.Digest.String(),
		}
		layers = append(layers, appLayer)
	}

	// Files layers follow the Wasm layers, in component order, so layer i
	// is still component i's module.
	for _, pc := range p.Components {
		if pc.Files != nil {
			layers = append(layers, pc.Files.Desc)
		}
	}

	cfgJSON, err := json.Marshal(p.App)
	if err != nil {
		return nil, fmt.Errorf("registry: encoding app config: %w", err)
	}
	p.ConfigJSON = cfgJSON
	p.Config = ocispec.Descriptor{MediaType: MediaTypeAppConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}

	ann := map[string]string{ocispec.AnnotationTitle: app.Name}
	maps.Copy(ann, opts.Annotations)
	man := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactTypeApp,
		Config:       p.Config,
		Layers:       layers,
		Annotations:  ann,
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return nil, fmt.Errorf("registry: encoding app manifest: %w", err)
	}
	p.ManifestJSON = manJSON
	p.Manifest = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: ArtifactTypeApp,
		Digest: digest.FromBytes(manJSON), Size: int64(len(manJSON))}
	return p, nil
}

// packComponentFiles packs the declared files of c into its files layer;
// nil when c declares none.
func packComponentFiles(appName string, c *deploy.Component, opts PackOptions) (*Blob, error) {
	if len(c.Files) == 0 {
		return nil, nil
	}
	fsys := opts.Files[c.Name]
	if fsys == nil {
		return nil, fmt.Errorf("registry: %w: app %q: component %q declares files %q but no file tree was given for it (PackOptions.Files)",
			ErrInvalidApp, appName, c.Name, c.Files)
	}
	archive, err := PackFiles(fsys, c.Files, opts.MaxFilesBytes)
	if err != nil {
		return nil, fmt.Errorf("registry: app %q: component %q: %w", appName, c.Name, err)
	}
	return &Blob{Data: archive, Desc: ocispec.Descriptor{
		MediaType: MediaTypeFilesLayer, Digest: digest.FromBytes(archive), Size: int64(len(archive)),
		Annotations: map[string]string{
			ocispec.AnnotationTitle: filesTitle(c.Name),
			AnnotationComponent:     c.Name,
		},
	}}, nil
}

func validateApp(app deploy.App, modules map[string][]byte) error {
	if app.Name == "" {
		return fmt.Errorf("registry: %w: app has no name", ErrInvalidApp)
	}
	if len(app.Components) == 0 {
		return fmt.Errorf("registry: %w: app %q has no components", ErrInvalidApp, app.Name)
	}
	seen := map[string]bool{}
	for _, c := range app.Components {
		if err := checkName(c.Name); err != nil {
			return fmt.Errorf("registry: %w: app %q: component name %q %s", ErrInvalidApp, app.Name, c.Name, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("registry: %w: app %q: component %q appears twice", ErrInvalidApp, app.Name, c.Name)
		}
		seen[c.Name] = true
		if len(modules[c.Name]) == 0 {
			return fmt.Errorf("registry: %w: app %q: no Wasm module for component %q", ErrInvalidApp, app.Name, c.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		if !seen[name] {
			return fmt.Errorf("registry: %w: app %q: module given for unknown component %q", ErrInvalidApp, app.Name, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(app.Variables)) {
		if v := app.Variables[name]; v.Secret && v.Default != nil {
			// Never echo the value.
			return fmt.Errorf("registry: %w: app %q: secret variable %q carries a value", ErrSecretValue, app.Name, name)
		}
	}
	return nil
}

// checkName refuses names that are unsafe as file names (oras writes layers
// to files named by their title).
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("is empty")
	case name == "." || name == "..":
		return fmt.Errorf("is not a file name")
	case strings.ContainsAny(name, `/\:`):
		return fmt.Errorf("contains a path separator")
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("contains white space or control characters")
	}
	return nil
}

// cloneApp copies app deeply enough that setting component digests does
// not write into the caller's slices.
func cloneApp(app deploy.App) deploy.App {
	out := app
	out.Components = slices.Clone(app.Components)
	return out
}
