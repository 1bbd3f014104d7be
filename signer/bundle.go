package signer

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// cosign v3 signs in the Sigstore bundle format by default: the signature
// is an OCI referrer of the artifact (found through the referrers API or
// its sha256-<hex> fallback tag) whose one layer is a bundle holding a DSSE
// envelope of an in-toto statement — subject: the manifest digest,
// predicate type cosignSignPredicate. ferry reads these beside the older
// .sig format. Only bundles signed with a key are verified; a keyless
// bundle (a Fulcio certificate, a Rekor entry) is reported as such.

const (
	// cosignSignPredicate is the predicate type of `cosign sign`'s
	// statements; other predicates (`cosign attest`) are attestations, not
	// signatures, and never count as one.
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	// bundleMediaPrefix starts the artifact type of a Sigstore bundle
	// referrer and the media type of its layer.
	bundleMediaPrefix = "application/vnd.dev.sigstore.bundle"
)

// fetchBundles returns the Sigstore bundles attached to digest, as JSON.
// Referrers that are not bundles are ignored; a registry without referrers
// (no API, no fallback tag) has none.
func fetchBundles(digest name.Digest, oopts []ociremote.Option) ([][]byte, error) {
	idx, err := ociremote.Referrers(digest, "", oopts...)
	if err != nil {
		return nil, registryError("listing referrers of "+digest.String(), err)
	}
	var out [][]byte
	for _, m := range idx.Manifests {
		if !strings.HasPrefix(m.ArtifactType, bundleMediaPrefix) {
			continue
		}
		ref := digest.Context().Digest(m.Digest.String())
		b, err := ociremote.Bundle(ref, oopts...)
		if err != nil {
			continue // not a readable bundle: it cannot verify anyway
		}
		raw, err := b.MarshalJSON()
		if err != nil {
			continue
		}
		out = append(out, raw)
	}
	return out, nil
}

// checkBundle verifies one bundle (JSON) against the policy's keys for the
// manifest digest h, as checkSignature does for a .sig signature.
func checkBundle(ctx context.Context, raw []byte, h v1.Hash, kvs []keyVerifier, opts VerifyOptions) sigOutcome {
	var o sigOutcome
	b := &sgbundle.Bundle{}
	if err := b.UnmarshalJSON(raw); err != nil {
		o.note = "an unreadable Sigstore bundle: " + err.Error()
		return o
	}
	if vc, err := b.VerificationContent(); err == nil && vc.Certificate() != nil {
		o.note = "a keyless (certificate) cosign bundle, which ferry does not verify: sign with a key, or with cosign --new-bundle-format=false"
		return o
	}
	for i := range kvs {
		co := &cosign.CheckOpts{
			SigVerifier:     kvs[i].v,
			IgnoreTlog:      true,
			IgnoreSCT:       true,
			TrustedMaterial: root.TrustedMaterialCollection{},
		}
		// The signature first; what it signs is checked below, so that a
		// bundle copied from another artifact is named as such.
		if _, err := cosign.VerifyNewBundle(ctx, co, verify.WithoutArtifactUnsafe(), b); err != nil {
			continue // not this key
		}
		if !bundleClaimsOK(b, h, opts.Annotations, &o) {
			continue
		}
		o.ok, o.key = true, &kvs[i]
		return o
	}
	return o
}

// bundleClaimsOK checks the statement of a cryptographically valid bundle:
// a cosign signature (not an attestation) whose subject is h, with the
// required annotations. It records why not in o.
func bundleClaimsOK(b *sgbundle.Bundle, h v1.Hash, want map[string]string, o *sigOutcome) bool {
	env, err := b.Envelope()
	if err != nil {
		o.payloadDigest = "(no DSSE envelope)"
		return false
	}
	st, err := env.Statement()
	if err != nil {
		o.payloadDigest = "(not an in-toto statement)"
		return false
	}
	if st.GetPredicateType() != cosignSignPredicate {
		o.note = fmt.Sprintf("an attestation (%s), not a signature", st.GetPredicateType())
		return false
	}
	var names []string
	for _, s := range st.GetSubject() {
		d := s.GetDigest()[h.Algorithm]
		if d != h.Hex {
			if d != "" {
				names = append(names, h.Algorithm+":"+d)
			}
			continue
		}
		if _, err := hex.DecodeString(d); err != nil {
			continue
		}
		ann := s.GetAnnotations().AsMap()
		for k, v := range want {
			have, ok := ann[k]
			if !ok || fmt.Sprint(have) != v {
				o.annotations = true
				return false
			}
		}
		return true
	}
	o.payloadDigest = "(no digest)"
	if len(names) > 0 {
		o.payloadDigest = strings.Join(names, ", ")
	}
	return false
}
