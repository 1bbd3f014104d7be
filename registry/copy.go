package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// cosignSuffixes are the tag suffixes cosign stores beside an artifact:
// signatures, attestations, SBOMs ("sha256-<hex>.sig", ...).
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// CopyResult reports what Copy did.
type CopyResult struct {
	// Ref is "HOST/REPO@DIGEST" of the copied manifest in the destination.
	Ref string `json:"ref"`
	// Digest is the copied manifest's digest (the same on both sides).
	Digest digest.Digest `json:"digest"`
	// Tag is the destination tag set, if the destination named one.
	Tag string `json:"tag,omitempty"`
	// Components are the component manifests copied along with an app.
	Components []digest.Digest `json:"components,omitempty"`
	// SignatureTags are the cosign tags ("sha256-<hex>.sig", ".att",
	// ".sbom") copied along.
	SignatureTags []string `json:"signature_tags,omitempty"`
	// Referrers are the manifests that refer to the copied ones (OCI 1.1
	// subject, e.g. cosign v3 bundles) copied along.
	Referrers []digest.Digest `json:"referrers,omitempty"`
}

// Copy copies the artifact src names (tag or digest) to dst ("HOST/REPO" or
// "HOST/REPO:TAG", possibly on another registry), with everything that
// belongs to it: its blobs, for a ferry app its component manifests, the
// cosign signature, attestation and SBOM tags of each, and their OCI
// referrers. Content the destination holds already is not sent again.
func (c *Client) Copy(ctx context.Context, src, dst string) (*CopyResult, error) {
	sr, err := ParseReference(src)
	if err != nil {
		return nil, err
	}
	if sr.ref() == "" {
		return nil, fmt.Errorf("registry: %w %q: names no tag or digest", ErrInvalidReference, src)
	}
	dr, err := ParseReference(dst)
	if err != nil {
		return nil, err
	}
	srcRepo, err := c.repository(sr)
	if err != nil {
		return nil, err
	}
	dstRepo, err := c.repository(dr)
	if err != nil {
		return nil, err
	}
	root, err := srcRepo.Resolve(ctx, sr.ref())
	if err != nil {
		return nil, fmt.Errorf("registry: resolving %s: %w", sr, classify(err))
	}
	if dr.Digest != "" && dr.Digest != root.Digest {
		return nil, fmt.Errorf("registry: %w %q: destination digest differs from the source's %s", ErrInvalidReference, dst, root.Digest)
	}
	res := &CopyResult{Digest: root.Digest, Ref: dr.WithDigest(root.Digest).String()}
	if err := c.copyGraph(ctx, srcRepo, dstRepo, root); err != nil {
		return nil, fmt.Errorf("registry: copying %s to %s: %w", sr, dr.Repo(), err)
	}
	roots := []ocispec.Descriptor{root}

	// A ferry app's component manifests are not in its graph; their digests
	// are in the layer annotations.
	if comps, err := componentManifests(ctx, srcRepo, root); err != nil {
		return nil, fmt.Errorf("registry: reading %s: %w", sr, err)
	} else {
		for _, d := range comps {
			desc, err := srcRepo.Resolve(ctx, d.String())
			if err != nil {
				return nil, fmt.Errorf("registry: component manifest %s of %s: %w", d, sr, classify(err))
			}
			if err := c.copyGraph(ctx, srcRepo, dstRepo, desc); err != nil {
				return nil, fmt.Errorf("registry: copying component manifest %s: %w", d, err)
			}
			res.Components = append(res.Components, d)
			roots = append(roots, desc)
		}
	}

	for _, r := range roots {
		for _, suffix := range cosignSuffixes {
			tag := cosignTag(r.Digest, suffix)
			desc, err := srcRepo.Resolve(ctx, tag)
			if errors.Is(err, errdef.ErrNotFound) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("registry: looking for %s in %s: %w", tag, sr.Repo(), classify(err))
			}
			if err := c.copyGraph(ctx, srcRepo, dstRepo, desc); err != nil {
				return nil, fmt.Errorf("registry: copying %s: %w", tag, err)
			}
			if err := c.tagDesc(ctx, dstRepo, desc, tag); err != nil {
				return nil, fmt.Errorf("registry: tagging %s in %s: %w", tag, dr.Repo(), err)
			}
			res.SignatureTags = append(res.SignatureTags, tag)
		}
		var refs []ocispec.Descriptor
		err := srcRepo.Referrers(ctx, r, "", func(page []ocispec.Descriptor) error {
			refs = append(refs, page...)
			return nil
		})
		if err != nil && !errors.Is(err, errdef.ErrNotFound) {
			return nil, fmt.Errorf("registry: listing referrers of %s: %w", r.Digest, classify(err))
		}
		for _, ref := range refs {
			if err := c.copyGraph(ctx, srcRepo, dstRepo, ref); err != nil {
				return nil, fmt.Errorf("registry: copying referrer %s: %w", ref.Digest, err)
			}
			res.Referrers = append(res.Referrers, ref.Digest)
		}
	}

	if dr.Tag != "" {
		if err := c.tagDesc(ctx, dstRepo, root, dr.Tag); err != nil {
			return nil, fmt.Errorf("registry: tagging %s: %w", dr, err)
		}
		res.Tag = dr.Tag
	}
	return res, nil
}

func (c *Client) copyGraph(ctx context.Context, src, dst *remote.Repository, root ocispec.Descriptor) error {
	err := oras.CopyGraph(ctx, src, dst, root, oras.CopyGraphOptions{Concurrency: c.opts.Concurrency})
	return classify(err)
}

// tagDesc points tag at desc in repo (fetching the manifest from repo)
// unless it points there already.
func (c *Client) tagDesc(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, tag string) error {
	if cur, err := repo.Resolve(ctx, tag); err == nil && cur.Digest == desc.Digest {
		return nil
	}
	return classify(repo.Tag(ctx, desc, tag))
}

// componentManifests returns the component manifest digests named by a
// ferry app manifest's layers; nothing for other artifacts.
func componentManifests(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]digest.Digest, error) {
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, nil
	}
	b, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return nil, classify(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArtifact, err)
	}
	if man.ArtifactType != ArtifactTypeApp {
		return nil, nil
	}
	var out []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, l := range man.Layers {
		s, ok := l.Annotations[AnnotationComponentManifest]
		if !ok {
			continue
		}
		d, err := digest.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %s: bad %s: %v", ErrInvalidArtifact, l.Digest, AnnotationComponentManifest, err)
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}
