package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ferry-wasm/ferry/deploy"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// PushOptions tune PushApp. The zero value pushes by digest only.
type PushOptions struct {
	// Tags are set to point at the app manifest once everything is pushed.
	// A tag that already points there is left alone.
	Tags []string
	// Pack tunes the layout (created time, author, annotations).
	Pack PackOptions
	// PlainHTTP talks plain HTTP to repo's registry for this push, as
	// Options.Insecure does for every host (a spec's registry { insecure =
	// true } applies to its own host only). False means the client's rule:
	// HTTPS except for loopback hosts, unless Options.Insecure.
	PlainHTTP bool
}

// PushResult reports what PushApp did.
type PushResult struct {
	// Ref is "HOST/REPO@DIGEST" of the app manifest.
	Ref string `json:"ref"`
	// Digest is the app manifest's digest.
	Digest digest.Digest `json:"digest"`
	// Tags are the tags that point at the app now.
	Tags []string `json:"tags,omitempty"`
	// Uploaded counts blobs (layers and configs) sent to the registry;
	// Skipped counts those the registry already held and that were not
	// sent again. Manifests are not counted here.
	Uploaded int `json:"uploaded"`
	Skipped  int `json:"skipped"`
	// UploadedBytes sums the sizes of the uploaded blobs.
	UploadedBytes int64 `json:"uploaded_bytes"`
	// ManifestsPushed counts manifests sent (0 when all were present).
	ManifestsPushed int `json:"manifests_pushed"`
	// Components are the pushed component artifacts, in app order.
	Components []PushedComponent `json:"components"`
	// App is the app as stored (component digests set).
	App deploy.App `json:"-"`
}

// PushedComponent names one component artifact in the registry.
type PushedComponent struct {
	// Name is the component name.
	Name string `json:"name"`
	// Layer is the digest of the Wasm module blob.
	Layer digest.Digest `json:"layer"`
	// Ref is "HOST/REPO@DIGEST" of the component's CNCF Wasm manifest.
	Ref string `json:"ref"`
	// Manifest is the digest of the component manifest.
	Manifest digest.Digest `json:"manifest"`
	// Files is the digest of the component's files layer (in the app
	// manifest); empty when it declares no files.
	Files digest.Digest `json:"files,omitempty"`
}

// PushApp packs app and modules (Wasm bytes by component name; see Pack),
// with the declared files of each component taken from opts.Pack.Files,
// and pushes them to repo ("HOST/REPO", or "HOST/REPO:TAG" to also set that
// tag). Blobs and manifests the registry already holds are not uploaded
// again, so re-pushing an unchanged app sends nothing but existence checks.
func (c *Client) PushApp(ctx context.Context, repo string, app deploy.App, modules map[string][]byte, opts PushOptions) (*PushResult, error) {
	r, err := ParseReference(repo)
	if err != nil {
		return nil, err
	}
	if r.Digest != "" {
		return nil, fmt.Errorf("registry: %w %q: push to a repository or tag, not a digest", ErrInvalidReference, repo)
	}
	tags := append([]string(nil), opts.Tags...)
	if r.Tag != "" {
		tags = append(tags, r.Tag)
	}
	for _, t := range tags {
		if _, err := ParseReference(r.Repo() + ":" + t); err != nil || t == "" {
			return nil, fmt.Errorf("registry: %w: bad tag %q", ErrInvalidReference, t)
		}
	}
	p, err := Pack(app, modules, opts.Pack)
	if err != nil {
		return nil, err
	}
	rp, err := c.repository(r)
	if err != nil {
		return nil, err
	}
	if opts.PlainHTTP {
		rp.PlainHTTP = true
	}
	roles := blobRoles(p)

	res := &PushResult{App: p.App}
	var uploaded, skipped atomic.Int64
	var upBytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Concurrency)
	for _, b := range p.Blobs() {
		g.Go(func() error {
			sent, err := c.pushOne(gctx, rp, b)
			if err != nil {
				return &BlobError{Role: roles[b.Desc.Digest], Digest: b.Desc.Digest, Err: fmt.Errorf("pushing to %s: %w", r.Repo(), err)}
			}
			if sent {
				uploaded.Add(1)
				upBytes.Add(b.Desc.Size)
			} else {
				skipped.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, m := range p.Manifests() {
		sent, err := c.pushOne(ctx, rp, m)
		if err != nil {
			return nil, &BlobError{Role: roles[m.Desc.Digest], Digest: m.Desc.Digest, Err: fmt.Errorf("pushing to %s: %w", r.Repo(), err)}
		}
		if sent {
			res.ManifestsPushed++
		}
	}
	for _, t := range tags {
		if err := c.tag(ctx, rp, Blob{Desc: p.Manifest, Data: p.ManifestJSON}, t); err != nil {
			return nil, fmt.Errorf("registry: tagging %s: %w", r.WithTag(t), err)
		}
		res.Tags = append(res.Tags, t)
	}
	res.Digest = p.Manifest.Digest
	res.Ref = r.WithDigest(p.Manifest.Digest).String()
	res.Uploaded, res.Skipped, res.UploadedBytes = int(uploaded.Load()), int(skipped.Load()), upBytes.Load()
	for _, pc := range p.Components {
		pushed := PushedComponent{
			Name: pc.Name, Layer: pc.Layer.Digest, Manifest: pc.Manifest.Digest,
			Ref: r.WithDigest(pc.Manifest.Digest).String(),
		}
		if pc.Files != nil {
			pushed.Files = pc.Files.Desc.Digest
		}
		res.Components = append(res.Components, pushed)
	}
	c.log.DebugContext(ctx, "pushed app", "ref", res.Ref, "uploaded", res.Uploaded, "skipped", res.Skipped, "manifests", res.ManifestsPushed)
	return res, nil
}

// pushOne pushes b unless the repository holds it already; sent tells
// which.
func (c *Client) pushOne(ctx context.Context, rp *remote.Repository, b Blob) (sent bool, err error) {
	ok, err := rp.Exists(ctx, b.Desc)
	if err != nil {
		return false, classify(err)
	}
	if ok {
		c.log.DebugContext(ctx, "blob present", "digest", b.Desc.Digest, "size", b.Desc.Size)
		return false, nil
	}
	if err := rp.Push(ctx, b.Desc, bytes.NewReader(b.Data)); err != nil {
		if errors.Is(err, errdef.ErrAlreadyExists) {
			return false, nil
		}
		return false, classify(err)
	}
	c.log.DebugContext(ctx, "blob uploaded", "digest", b.Desc.Digest, "size", b.Desc.Size)
	return true, nil
}

// tag points tag at manifest m unless it points there already.
func (c *Client) tag(ctx context.Context, rp *remote.Repository, m Blob, tag string) error {
	if cur, err := rp.Resolve(ctx, tag); err == nil && cur.Digest == m.Desc.Digest {
		return nil
	} else if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return classify(err)
	}
	if err := rp.PushReference(ctx, m.Desc, bytes.NewReader(m.Data), tag); err != nil {
		return classify(err)
	}
	return nil
}

// blobRoles names every blob and manifest of p for error messages.
func blobRoles(p *Packed) map[digest.Digest]string {
	roles := map[digest.Digest]string{
		p.Manifest.Digest: fmt.Sprintf("app manifest of %q", p.App.Name),
		p.Config.Digest:   fmt.Sprintf("app config of %q", p.App.Name),
	}
	for _, c := range p.Components {
		if _, ok := roles[c.Layer.Digest]; !ok {
			roles[c.Layer.Digest] = fmt.Sprintf("layer %q", c.Name)
		}
		if _, ok := roles[c.Config.Digest]; !ok {
			roles[c.Config.Digest] = fmt.Sprintf("wasm config of %q", c.Name)
		}
		if c.Files != nil {
			if _, ok := roles[c.Files.Desc.Digest]; !ok {
				roles[c.Files.Desc.Digest] = fmt.Sprintf("files of %q", c.Name)
			}
		}
		if _, ok := roles[c.Manifest.Digest]; !ok {
			roles[c.Manifest.Digest] = fmt.Sprintf("component manifest of %q", c.Name)
		}
	}
	return roles
}
