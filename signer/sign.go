package signer

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// SignOptions tune [Sign]. The zero value signs with no annotations over
// HTTPS (plain HTTP on loopback) with Docker-config credentials.
type SignOptions struct {
	// Registry says how to reach the registry.
	Registry RegistryOptions
	// Annotations are added to the signed payload's "optional" section
	// (cosign sign -a key=value); verifiers can require them.
	Annotations map[string]string
	// Logger receives debug events. Default nil: no logging.
	Logger *slog.Logger
}

// SignResult describes a signature that [Sign] stored.
type SignResult struct {
	// Digest is the signed manifest digest, "sha256:<hex>".
	Digest string
	// SignatureRef is where the signature lives: REPO:sha256-<hex>.sig.
	SignatureRef string
	// Signature is the payload and its signature, which can be kept beside a
	// cached copy of the artifact for [VerifyLocal].
	Signature Signature
	// KeyID is the fingerprint of the signing key (see [KeyID]).
	KeyID string
}

// Sign signs the manifest digest of ref (REPO@sha256:<hex>) with key and
// stores the signature in the registry at REPO:sha256-<hex>.sig in cosign's
// format, next to any signatures already there. Signing the same digest
// twice with the same key and annotations stores one signature.
//
// A tag reference is refused with [ErrTagReference]: a tag can move after it
// is signed, so resolve it to a digest first (see [Resolve]). A digest the
// registry does not have gives [ErrNotFound].
func Sign(ctx context.Context, ref string, key *PrivateKey, opts SignOptions) (*SignResult, error) {
	if key == nil || key.sv == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrInvalidKey)
	}
	r, err := parseRef(ref, opts.Registry)
	if err != nil {
		return nil, err
	}
	digest, ok := r.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("%w: %q is a tag; resolve it to REPO@sha256:... and sign that", ErrTagReference, ref)
	}
	log := logger(opts.Logger)

	// The artifact must exist: a signature for a digest nobody can pull is
	// a mistake (a typo, or the wrong registry).
	if _, err := remote.Head(digest, opts.Registry.remoteOptions(ctx)...); err != nil {
		return nil, registryError("looking up "+digest.String(), err)
	}

	ann := make(map[string]any, len(opts.Annotations))
	for k, v := range opts.Annotations {
		ann[k] = v
	}
	if len(ann) == 0 {
		ann = nil
	}
	pl, err := (&payload.Cosign{Image: digest, Annotations: ann}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("building signature payload: %w", err)
	}
	rawSig, err := key.sv.SignMessage(bytes.NewReader(pl), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", digest.DigestStr(), err)
	}
	b64 := base64.StdEncoding.EncodeToString(rawSig)
	ociSig, err := static.NewSignature(pl, b64)
	if err != nil {
		return nil, fmt.Errorf("building signature layer: %w", err)
	}

	oopts := opts.Registry.ociOptions(ctx)
	se := ociremote.SignedUnknown(digest, oopts...)
	newSE, err := mutate.AttachSignatureToEntity(se, ociSig, mutate.WithDupeDetector(cremote.NewDupeDetector(key.sv)))
	if err != nil {
		return nil, registryError("reading existing signatures of "+digest.String(), err)
	}
	if err := ociremote.WriteSignatures(digest.Repository, newSE, oopts...); err != nil {
		return nil, registryError("writing signature for "+digest.String(), err)
	}
	sigTag, err := ociremote.SignatureTag(digest, oopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	log.Debug("signed", "digest", digest.DigestStr(), "signature", sigTag.String(), "key", key.KeyID())
	return &SignResult{
		Digest:       digest.DigestStr(),
		SignatureRef: sigTag.String(),
		Signature:    Signature{Payload: pl, Base64: b64},
		KeyID:        key.KeyID(),
	}, nil
}

// Resolve returns REPO@sha256:<hex> for ref: a digest reference is returned
// as it is (normalised), a tag is looked up in the registry. It is how a
// caller turns "app:v1" into something [Sign] accepts.
func Resolve(ctx context.Context, ref string, ro RegistryOptions) (string, error) {
	r, err := parseRef(ref, ro)
	if err != nil {
		return "", err
	}
	if d, ok := r.(name.Digest); ok {
		return d.String(), nil
	}
	desc, err := remote.Head(r, ro.remoteOptions(ctx)...)
	if err != nil {
		return "", registryError("resolving "+r.String(), err)
	}
	return r.Context().Digest(desc.Digest.String()).String(), nil
}

// logger returns l, or a logger that drops everything.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
