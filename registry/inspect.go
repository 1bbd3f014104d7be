package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ferry-wasm/ferry/deploy"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Kinds of artifact reported by Inspect.
const (
	KindApp       = "ferry-app"
	KindComponent = "wasm-component"
	KindIndex     = "index"
	KindOther     = "other"
)

// Inspection describes an artifact in a registry: its manifest, config,
// layers and the signatures found beside it. It encodes to JSON as is;
// WriteText renders it for people.
type Inspection struct {
	// Reference is the reference as given.
	Reference string `json:"reference"`
	// Ref is "HOST/REPO@DIGEST".
	Ref string `json:"ref"`
	// Digest, MediaType, ArtifactType and Size describe the manifest.
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	ArtifactType string        `json:"artifactType,omitempty"`
	Size         int64         `json:"size"`
	// Kind is KindApp, KindComponent, KindIndex or KindOther.
	Kind string `json:"kind"`
	// Annotations are the manifest's annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Config describes the config blob (absent for an index).
	Config *Blobinfo `json:"config,omitempty"`
	// App is the decoded config of a ferry app.
	App *deploy.App `json:"app,omitempty"`
	// Wasm is the decoded config of a CNCF Wasm component artifact.
	Wasm *WasmConfig `json:"wasm,omitempty"`
	// Layers are the manifest's layers (for an index: its manifests).
	Layers []Blobinfo `json:"layers"`
	// Signatures are the cosign tags found for this digest in the same
	// repository ("sha256-<hex>.sig", ".att", ".sbom").
	Signatures []Signature `json:"signatures"`
	// Referrers are the manifests whose subject is this one (OCI 1.1
	// referrers, e.g. cosign v3 bundles).
	Referrers []Blobinfo `json:"referrers,omitempty"`
	// Manifest is the raw manifest.
	Manifest json.RawMessage `json:"manifest"`
}

// Blobinfo describes one blob or manifest.
type Blobinfo struct {
	// Title is the org.opencontainers.image.title annotation (a component
	// name in a ferry app).
	Title string `json:"title,omitempty"`
	// MediaType, ArtifactType, Digest, Size and Annotations are the
	// descriptor's fields.
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Signature is a cosign tag found beside an artifact.
type Signature struct {
	// Tag is "sha256-<hex>.sig" (or ".att", ".sbom").
	Tag string `json:"tag"`
	// Kind is "signature", "attestation" or "sbom".
	Kind string `json:"kind"`
	// Digest is the digest of the manifest the tag points at.
	Digest digest.Digest `json:"digest"`
}

func blobinfo(d ocispec.Descriptor) Blobinfo {
	return Blobinfo{Title: d.Annotations[ocispec.AnnotationTitle], MediaType: d.MediaType,
		ArtifactType: d.ArtifactType, Digest: d.Digest, Size: d.Size, Annotations: d.Annotations}
}

// Inspect describes the artifact ref names, reading only manifests and
// config (never layers) from the registry.
func (c *Client) Inspect(ctx context.Context, ref string) (*Inspection, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.ref() == "" {
		return nil, fmt.Errorf("registry: %w %q: names no tag or digest", ErrInvalidReference, ref)
	}
	repo, err := c.repository(r)
	if err != nil {
		return nil, err
	}
	desc, rc, err := repo.FetchReference(ctx, r.ref())
	if err != nil {
		return nil, fmt.Errorf("registry: fetching %s: %w", r, classify(err))
	}
	want := desc
	if r.Digest != "" {
		want.Digest = r.Digest
	}
	want.Size = -1
	raw, err := readVerified(rc, want)
	rc.Close()
	if err != nil {
		return nil, &BlobError{Role: "manifest", Digest: want.Digest, Err: err}
	}
	desc.Digest, desc.Size = want.Digest, int64(len(raw))
	in := &Inspection{Reference: ref, Ref: r.WithDigest(desc.Digest).String(), Digest: desc.Digest,
		MediaType: desc.MediaType, Size: desc.Size, Manifest: raw, Kind: KindOther, Layers: []Blobinfo{}, Signatures: []Signature{}}

	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, &BlobError{Role: "index", Digest: desc.Digest, Err: fmt.Errorf("%w: %v", ErrInvalidArtifact, err)}
		}
		in.Kind, in.ArtifactType, in.Annotations = KindIndex, idx.ArtifactType, idx.Annotations
		for _, m := range idx.Manifests {
			in.Layers = append(in.Layers, blobinfo(m))
		}
	default:
		var man ocispec.Manifest
		if err := json.Unmarshal(raw, &man); err != nil {
			return nil, &BlobError{Role: "manifest", Digest: desc.Digest, Err: fmt.Errorf("%w: %v", ErrInvalidArtifact, err)}
		}
		in.ArtifactType, in.Annotations = man.ArtifactType, man.Annotations
		cfg := blobinfo(man.Config)
		in.Config = &cfg
		for _, l := range man.Layers {
			in.Layers = append(in.Layers, blobinfo(l))
		}
		isApp := man.ArtifactType == ArtifactTypeApp && man.Config.MediaType == MediaTypeAppConfig
		isWasm := man.Config.MediaType == MediaTypeWasmConfig
		if (isApp || isWasm) && man.Config.Size >= 0 && man.Config.Size <= maxManifestBytes {
			b, err := content.FetchAll(ctx, repo, man.Config)
			if err != nil {
				return nil, &BlobError{Role: "config", Digest: man.Config.Digest, Err: classify(err)}
			}
			if isApp {
				var app deploy.App
				if err := json.Unmarshal(b, &app); err != nil {
					return nil, &BlobError{Role: "app config", Digest: man.Config.Digest, Err: fmt.Errorf("%w: %v", ErrInvalidArtifact, err)}
				}
				in.Kind, in.App = KindApp, &app
			} else {
				var wc WasmConfig
				if err := json.Unmarshal(b, &wc); err != nil {
					return nil, &BlobError{Role: "wasm config", Digest: man.Config.Digest, Err: fmt.Errorf("%w: %v", ErrInvalidArtifact, err)}
				}
				in.Kind, in.Wasm = KindComponent, &wc
			}
		}
	}

	for _, suffix := range cosignSuffixes {
		tag := cosignTag(desc.Digest, suffix)
		sd, err := repo.Resolve(ctx, tag)
		if errors.Is(err, errdef.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("registry: looking for %s: %w", tag, classify(err))
		}
		kind := map[string]string{".sig": "signature", ".att": "attestation", ".sbom": "sbom"}[suffix]
		in.Signatures = append(in.Signatures, Signature{Tag: tag, Kind: kind, Digest: sd.Digest})
	}
	err = repo.Referrers(ctx, desc, "", func(page []ocispec.Descriptor) error {
		for _, d := range page {
			in.Referrers = append(in.Referrers, blobinfo(d))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("registry: listing referrers of %s: %w", in.Ref, classify(err))
	}
	return in, nil
}

// WriteText renders in for people: one header block, then the layers and
// the signatures.
func (in *Inspection) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("Reference:\t%s\n", in.Ref)
	p("Kind:\t%s\n", in.Kind)
	p("Media type:\t%s\n", in.MediaType)
	if in.ArtifactType != "" {
		p("Artifact type:\t%s\n", in.ArtifactType)
	}
	p("Size:\t%d\n", in.Size)
	for _, k := range slices.Sorted(maps.Keys(in.Annotations)) {
		p("Annotation:\t%s=%s\n", k, in.Annotations[k])
	}
	if in.Config != nil {
		p("Config:\t%s  %s  %d bytes\n", in.Config.MediaType, in.Config.Digest, in.Config.Size)
	}
	if in.App != nil {
		p("App:\t%s\n", in.App.Name)
		if len(in.App.Hosts) > 0 {
			p("Hosts:\t%s\n", strings.Join(in.App.Hosts, ", "))
		}
		for _, c := range in.App.Components {
			p("Component:\t%s  routes %s\n", c.Name, strings.Join(c.Routes, " "))
			if len(c.Files) > 0 {
				layer := "no files layer"
				for _, l := range in.Layers {
					if l.MediaType == MediaTypeFilesLayer && l.Annotations[AnnotationComponent] == c.Name {
						layer = fmt.Sprintf("layer %s, %d bytes", l.Digest, l.Size)
					}
				}
				p("Files:\t%s  %s (%s)\n", c.Name, strings.Join(c.Files, " "), layer)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(in.App.Variables)) {
			v := in.App.Variables[name]
			switch {
			case v.Secret:
				p("Variable:\t%s (secret)\n", name)
			case v.Default != nil:
				p("Variable:\t%s = %q\n", name, *v.Default)
			default:
				p("Variable:\t%s (required)\n", name)
			}
		}
	}
	if in.Wasm != nil {
		p("Wasm:\t%s/%s\n", in.Wasm.Architecture, in.Wasm.OS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tMEDIA TYPE\tSIZE\tDIGEST")
	for _, l := range in.Layers {
		title := l.Title
		if title == "" {
			title = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", title, l.MediaType, l.Size, l.Digest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(in.Signatures) == 0 && len(in.Referrers) == 0 {
		_, err := fmt.Fprintln(w, "Signatures: none found")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIGNATURE\tKIND\tDIGEST")
	for _, s := range in.Signatures {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Tag, s.Kind, s.Digest)
	}
	for _, r := range in.Referrers {
		fmt.Fprintf(tw, "referrer\t%s\t%s\n", r.ArtifactType, r.Digest)
	}
	return tw.Flush()
}
