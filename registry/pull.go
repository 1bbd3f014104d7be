package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/ferry-wasm/ferry/deploy"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// maxManifestBytes caps manifests and config blobs read into memory.
const maxManifestBytes = 4 << 20

// PulledApp is an app read from a registry or the local cache, every blob
// checked against its digest.
type PulledApp struct {
	// Ref is "HOST/REPO@DIGEST" of the app manifest.
	Ref string `json:"ref"`
	// Digest is the app manifest's digest.
	Digest digest.Digest `json:"digest"`
	// App is the resolved app config stored in the artifact.
	App deploy.App `json:"app"`
	// Manifest is the app manifest.
	Manifest ocispec.Manifest `json:"manifest"`
	// Modules are the Wasm modules by layer digest ("sha256:<hex>", the
	// same string as deploy.Component.Digest).
	Modules map[string][]byte `json:"-"`
	// Files are the files layers by component name (only components that
	// have one): each a tar archive checked against its digest and, with
	// ReadFiles, for unsafe entries. FileTree unpacks one.
	Files map[string]Blob `json:"-"`
	// FromCache is true when nothing was fetched from the registry.
	FromCache bool `json:"from_cache"`
}

// Module returns the Wasm bytes of the named component.
func (p *PulledApp) Module(component string) ([]byte, error) {
	for _, c := range p.App.Components {
		if c.Name == component {
			if b, ok := p.Modules[c.Digest]; ok {
				return b, nil
			}
			return nil, fmt.Errorf("registry: %w: component %q: module %s missing", ErrInvalidArtifact, component, c.Digest)
		}
	}
	return nil, fmt.Errorf("registry: %w: app %q has no component %q", ErrNotFound, p.App.Name, component)
}

// FileTree returns the declared files of the named component as a
// read-only in-memory tree; nil (and no error) when it has no files layer.
func (p *PulledApp) FileTree(component string) (*FileTree, error) {
	b, ok := p.Files[component]
	if !ok {
		return nil, nil
	}
	t, err := ReadFiles(b.Data)
	if err != nil {
		return nil, &BlobError{Role: fmt.Sprintf("files of %q", component), Digest: b.Desc.Digest, Err: err}
	}
	return t, nil
}

// PullApp reads the app that ref names ("HOST/REPO@DIGEST", or a tag, which
// is resolved first) into the local OCI-layout cache and returns it. An app
// already in the cache under a digest reference is served from the cache
// without any network traffic; of a new app, only the blobs the cache
// lacks are downloaded (an unchanged component's module is read from the
// cache, verified by digest). Every manifest and blob is verified against
// its digest; a mismatch fails with a BlobError wrapping ErrDigestMismatch
// that names the blob. Files layers larger than Options.MaxFilesBytes are
// refused before they are fetched (ErrFilesTooLarge), and every files
// layer is checked with ReadFiles (links, absolute paths and ".." are
// ErrInvalidArtifact) before the app enters the cache.
func (c *Client) PullApp(ctx context.Context, ref string) (*PulledApp, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.ref() == "" {
		return nil, fmt.Errorf("registry: %w %q: names no tag or digest", ErrInvalidReference, ref)
	}
	cache, err := c.localCache()
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
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("registry: %w %q: %w", ErrInvalidReference, ref, err)
	}
	pulled, err := c.pullFromCache(ctx, cache, d)
	switch {
	case err == nil:
		pulled.Ref = r.WithDigest(d).String()
		c.log.DebugContext(ctx, "app served from cache", "ref", pulled.Ref)
		return pulled, nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	rp, err := c.repository(r)
	if err != nil {
		return nil, err
	}
	pulled, err = c.pullFromRemote(ctx, rp, cache, d)
	if err != nil {
		return nil, err
	}
	pulled.Ref = r.WithDigest(d).String()
	return pulled, nil
}

// pullFromCache assembles the app from the cache; ErrNotFound when any
// piece is missing.
func (c *Client) pullFromCache(ctx context.Context, cache *oci.Store, d digest.Digest) (*PulledApp, error) {
	read := func(desc ocispec.Descriptor, role string) ([]byte, error) {
		rc, err := cache.Fetch(ctx, desc)
		if err != nil {
			if errors.Is(err, errdef.ErrNotFound) {
				return nil, ErrNotFound
			}
			return nil, &BlobError{Role: role + " (local cache)", Digest: desc.Digest, Err: fmt.Errorf("%w: %w", ErrCache, err)}
		}
		defer rc.Close()
		b, err := readVerified(rc, desc)
		if err != nil {
			return nil, &BlobError{Role: role + " (local cache)", Digest: desc.Digest, Err: err}
		}
		return b, nil
	}
	manJSON, err := read(ocispec.Descriptor{Digest: d, Size: -1}, "app manifest")
	if err != nil {
		return nil, err
	}
	man, _, _, err := parseApp(d, manJSON, nil)
	if err != nil {
		return nil, err
	}
	if err := c.checkFilesSizes(d, man); err != nil {
		return nil, err
	}
	cfgJSON, err := read(man.Config, "app config")
	if err != nil {
		return nil, err
	}
	_, app, files, err := parseApp(d, manJSON, cfgJSON)
	if err != nil {
		return nil, err
	}
	blobs := map[digest.Digest][]byte{}
	for _, l := range man.Layers {
		if _, ok := blobs[l.Digest]; ok {
			continue
		}
		b, err := read(l, layerRole(l))
		if err != nil {
			return nil, err
		}
		blobs[l.Digest] = b
	}
	pulled, err := assemble(d, app, man, files, blobs)
	if err != nil {
		return nil, err
	}
	pulled.FromCache = true
	return pulled, nil
}

// assemble builds the PulledApp from verified blobs, checking each files
// layer's entries.
func assemble(d digest.Digest, app deploy.App, man ocispec.Manifest, files map[string]ocispec.Descriptor, blobs map[digest.Digest][]byte) (*PulledApp, error) {
	p := &PulledApp{Digest: d, App: app, Manifest: man, Modules: map[string][]byte{}}
	for _, l := range man.Layers {
		if l.MediaType == MediaTypeWasmLayer {
			p.Modules[l.Digest.String()] = blobs[l.Digest]
		}
	}
	checked := map[digest.Digest]bool{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		desc := files[name]
		b := blobs[desc.Digest]
		if !checked[desc.Digest] {
			if _, err := ReadFiles(b); err != nil {
				return nil, &BlobError{Role: fmt.Sprintf("files of %q", name), Digest: desc.Digest, Err: err}
			}
			checked[desc.Digest] = true
		}
		if p.Files == nil {
			p.Files = map[string]Blob{}
		}
		p.Files[name] = Blob{Desc: desc, Data: b}
	}
	return p, nil
}

// checkFilesSizes refuses files layers larger than the client's limit
// before anything is read.
func (c *Client) checkFilesSizes(d digest.Digest, man ocispec.Manifest) error {
	for _, l := range man.Layers {
		if l.MediaType == MediaTypeFilesLayer && l.Size > c.opts.MaxFilesBytes {
			return &BlobError{Role: layerRole(l), Digest: l.Digest, Err: fmt.Errorf("%w: %w: files layer of %q is %d bytes, more than the limit of %d (Options.MaxFilesBytes)",
				ErrInvalidArtifact, ErrFilesTooLarge, l.Annotations[AnnotationComponent], l.Size, c.opts.MaxFilesBytes)}
		}
	}
	return nil
}

// pullFromRemote fetches the app from the registry, verifies it and stores
// it in the cache (blobs first, the manifest last, so a manifest in the
// cache means a complete app).
func (c *Client) pullFromRemote(ctx context.Context, rp *remote.Repository, cache *oci.Store, d digest.Digest) (*PulledApp, error) {
	manDesc, rc, err := rp.FetchReference(ctx, d.String())
	if err != nil {
		return nil, &BlobError{Role: "app manifest", Digest: d, Err: classify(err)}
	}
	manJSON, err := readVerified(rc, ocispec.Descriptor{Digest: d, Size: -1})
	rc.Close()
	if err != nil {
		return nil, &BlobError{Role: "app manifest", Digest: d, Err: err}
	}
	manDesc.Digest, manDesc.Size = d, int64(len(manJSON))
	man, _, _, err := parseApp(d, manJSON, nil)
	if err != nil {
		return nil, err
	}
	if err := c.checkFilesSizes(d, man); err != nil {
		return nil, err
	}

	var mu sync.Mutex
	blobs := map[digest.Digest][]byte{}
	todo := append([]ocispec.Descriptor{man.Config}, man.Layers...)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Concurrency)
	queued := map[digest.Digest]bool{}
	for i, desc := range todo {
		if queued[desc.Digest] {
			continue
		}
		queued[desc.Digest] = true
		role := "app config"
		if i > 0 {
			role = layerRole(desc)
		}
		g.Go(func() error {
			// A blob another version brought (a component that did not
			// change) is read from the cache, verified by digest, not
			// downloaded again.
			if b, ok := cachedBlob(gctx, cache, desc); ok {
				mu.Lock()
				blobs[desc.Digest] = b
				mu.Unlock()
				c.log.DebugContext(gctx, "blob served from cache", "role", role, "digest", desc.Digest, "size", desc.Size)
				return nil
			}
			b, err := fetchVerified(gctx, rp, desc)
			if err != nil {
				return &BlobError{Role: role, Digest: desc.Digest, Err: err}
			}
			if err := pushCache(gctx, cache, desc, b); err != nil {
				return &BlobError{Role: role, Digest: desc.Digest, Err: err}
			}
			mu.Lock()
			blobs[desc.Digest] = b
			mu.Unlock()
			c.log.DebugContext(gctx, "blob fetched", "role", role, "digest", desc.Digest, "size", desc.Size)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	_, app, files, err := parseApp(d, manJSON, blobs[man.Config.Digest])
	if err != nil {
		return nil, err
	}
	// Check the files archives before the manifest enters the cache: a
	// manifest in the cache means a complete and sound app.
	pulled, err := assemble(d, app, man, files, blobs)
	if err != nil {
		return nil, err
	}
	if err := pushCache(ctx, cache, manDesc, manJSON); err != nil {
		return nil, &BlobError{Role: "app manifest", Digest: d, Err: err}
	}
	return pulled, nil
}

func layerRole(l ocispec.Descriptor) string {
	if t := l.Annotations[ocispec.AnnotationTitle]; t != "" {
		return fmt.Sprintf("layer %q", t)
	}
	return "layer"
}

// fetchVerified reads the blob desc from the registry and checks its size
// and digest.
func fetchVerified(ctx context.Context, rp *remote.Repository, desc ocispec.Descriptor) ([]byte, error) {
	rc, err := rp.Fetch(ctx, desc)
	if err != nil {
		return nil, classify(err)
	}
	defer rc.Close()
	return readVerified(rc, desc)
}

// readVerified reads r fully and checks it against desc's size and
// digest. A negative desc.Size means "unknown, at most maxManifestBytes".
func readVerified(r io.Reader, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArtifact, err)
	}
	limit := desc.Size
	if limit < 0 {
		limit = maxManifestBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, classify(err)
	}
	switch {
	case desc.Size < 0 && int64(len(b)) > limit:
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidArtifact, maxManifestBytes)
	case desc.Size >= 0 && int64(len(b)) != desc.Size:
		more := ""
		if int64(len(b)) > desc.Size {
			more = " or more"
		}
		return nil, fmt.Errorf("%w: received %d%s bytes, want %d", ErrDigestMismatch, len(b), more, desc.Size)
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return nil, fmt.Errorf("%w: received content has digest %s", ErrDigestMismatch, got)
	}
	return b, nil
}

// cachedBlob returns desc's blob from the cache when it is there and
// matches desc's size and digest; ok is false otherwise (fetch it).
func cachedBlob(ctx context.Context, cache *oci.Store, desc ocispec.Descriptor) ([]byte, bool) {
	if ok, err := cache.Exists(ctx, desc); err != nil || !ok {
		return nil, false
	}
	rc, err := cache.Fetch(ctx, desc)
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	b, err := readVerified(rc, desc)
	if err != nil {
		return nil, false
	}
	return b, true
}

// pushCache stores b in the cache unless it is there.
func pushCache(ctx context.Context, cache *oci.Store, desc ocispec.Descriptor, b []byte) error {
	if ok, err := cache.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	if err := cache.Push(ctx, desc, bytes.NewReader(b)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return fmt.Errorf("%w: %w", ErrCache, err)
	}
	return nil
}

// parseApp decodes and checks an app manifest and, when cfgJSON is not
// nil, its config; files maps each component with a files layer to it.
func parseApp(d digest.Digest, manJSON, cfgJSON []byte) (man ocispec.Manifest, app deploy.App, files map[string]ocispec.Descriptor, err error) {
	bad := func(format string, args ...any) error {
		return &BlobError{Role: "app manifest", Digest: d, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidArtifact}, args...)...)}
	}
	if err := json.Unmarshal(manJSON, &man); err != nil {
		return man, app, nil, bad("not an OCI manifest: %v", err)
	}
	if man.MediaType != ocispec.MediaTypeImageManifest {
		return man, app, nil, bad("media type %q is not an OCI image manifest", man.MediaType)
	}
	if man.ArtifactType != ArtifactTypeApp || man.Config.MediaType != MediaTypeAppConfig {
		return man, app, nil, bad("not a ferry app (artifactType %q, config %q)", man.ArtifactType, man.Config.MediaType)
	}
	if man.Config.Size > maxManifestBytes || man.Config.Size < 0 {
		return man, app, nil, bad("config size %d out of range", man.Config.Size)
	}
	files = map[string]ocispec.Descriptor{}
	for _, l := range man.Layers {
		if err := l.Digest.Validate(); err != nil {
			return man, app, nil, bad("layer digest: %v", err)
		}
		if l.Size < 0 {
			return man, app, nil, bad("layer %s has a negative size", l.Digest)
		}
		switch l.MediaType {
		case MediaTypeWasmLayer:
		case MediaTypeFilesLayer:
			comp := l.Annotations[AnnotationComponent]
			if comp == "" {
				return man, app, nil, bad("files layer %s has no %s annotation", l.Digest, AnnotationComponent)
			}
			if _, dup := files[comp]; dup {
				return man, app, nil, bad("component %q has two files layers", comp)
			}
			files[comp] = l
		default:
			return man, app, nil, bad("layer %s has media type %q, want %q or %q", l.Digest, l.MediaType, MediaTypeWasmLayer, MediaTypeFilesLayer)
		}
	}
	if err := man.Config.Digest.Validate(); err != nil {
		return man, app, nil, bad("config digest: %v", err)
	}
	if cfgJSON == nil {
		return man, app, files, nil
	}
	if err := json.Unmarshal(cfgJSON, &app); err != nil {
		return man, app, nil, &BlobError{Role: "app config", Digest: man.Config.Digest, Err: fmt.Errorf("%w: %v", ErrInvalidArtifact, err)}
	}
	wasm := map[string]bool{}
	for _, l := range man.Layers {
		if l.MediaType == MediaTypeWasmLayer {
			wasm[l.Digest.String()] = true
		}
	}
	declares := map[string]bool{}
	for _, comp := range app.Components {
		if !wasm[comp.Digest] {
			return man, app, nil, bad("component %q names layer %q, which the manifest does not list as a Wasm layer", comp.Name, comp.Digest)
		}
		declares[comp.Name] = len(comp.Files) > 0
	}
	for _, comp := range slices.Sorted(maps.Keys(files)) {
		switch has, ok := declares[comp]; {
		case !ok:
			return man, app, nil, bad("files layer %s names component %q, which the app does not have", files[comp].Digest, comp)
		case !has:
			return man, app, nil, bad("files layer %s belongs to component %q, which declares no files", files[comp].Digest, comp)
		}
	}
	return man, app, files, nil
}
