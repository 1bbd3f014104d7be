package signer

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Signature is one cosign signature as stored in a layer of a .sig
// manifest: the simple-signing payload, its base64 signature and, for
// keyless signatures, the layer annotations that carry the certificate,
// chain and Rekor bundle. It marshals to JSON, so it can be cached beside
// an artifact and checked again later with [VerifyLocal].
//
// A cosign v3 signature in the Sigstore bundle format is cached as Bundle
// (the bundle's JSON) with Payload and Base64 empty.
type Signature struct {
	Payload     []byte            `json:"payload,omitempty"`
	Base64      string            `json:"signature,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Bundle      json.RawMessage   `json:"bundle,omitempty"`
}

// VerifyOptions tune [Verify] and [VerifyLocal]. The zero value checks
// signatures and the manifest digest, with no required annotations.
type VerifyOptions struct {
	// Registry says how to reach the registry ([Verify] only).
	Registry RegistryOptions
	// Annotations, when set, must all appear with these values in the
	// signed payload (cosign verify -a key=value).
	Annotations map[string]string
	// CheckBlobs also downloads every blob the manifest references (and the
	// manifests of an index) and checks each against its digest. Default
	// false: only the manifest itself is checked; a pull by digest checks
	// the blobs as it downloads them.
	CheckBlobs bool
	// Keyless says where the Sigstore trust root comes from, for policies
	// with identities.
	Keyless KeylessOptions
	// Logger receives debug events. Default nil: no logging.
	Logger *slog.Logger
}

// VerifyResult says what was verified.
type VerifyResult struct {
	// Ref is the reference as given; Digest the manifest digest it names
	// or resolved to, "sha256:<hex>".
	Ref    string
	Digest string
	// Key names the policy key that verified (its Name, else its KeyID);
	// KeyID is that key's fingerprint. Both are empty when a keyless
	// identity verified instead.
	Key   string
	KeyID string
	// Identity is the policy identity that verified a keyless signature,
	// and Subject/Issuer what the certificate says; nil/empty for keys.
	Identity *Identity
	Subject  string
	Issuer   string
	// Signatures counts the signatures that verify under the policy;
	// Found counts all signatures found on the artifact.
	Signatures int
	Found      int
	// Verified holds the signatures that verified, to cache for
	// [VerifyLocal].
	Verified []Signature
}

// Verify checks that ref (REPO@sha256:... or REPO:TAG) is signed under
// policy: at least one signature on its manifest digest verifies with one of
// the policy's keys (or carries a certificate for one of its identities),
// and that signature's payload names exactly this digest. Only the registry
// is contacted for keys; the transparency log is not (cosign verify
// --insecure-ignore-tlog).
//
// The manifest is fetched and hashed, so content that no longer matches the
// digest gives [ErrDigestMismatch]. Other failures: [ErrUnsigned] (no
// signatures; with [ErrTagMoved] when ref is a tag whose repository holds
// signatures for other digests), [ErrNoMatchingKey], [ErrPayloadMismatch],
// [ErrAnnotationMismatch], [ErrNotFound], [ErrRegistry],
// [ErrTrustRootUnavailable], [ErrEmptyPolicy].
func Verify(ctx context.Context, ref string, policy Policy, opts VerifyOptions) (*VerifyResult, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	r, err := parseRef(ref, opts.Registry)
	if err != nil {
		return nil, err
	}
	log := logger(opts.Logger)
	repo := r.Context()
	f, err := newFetcher(ctx, repo, opts.Registry)
	if err != nil {
		return nil, err
	}
	body, _, h, err := f.manifest(ctx, r.Identifier())
	if err != nil {
		return nil, err
	}
	digest := repo.Digest(h.String())
	_, isTag := r.(name.Tag)
	log.Debug("resolved", "ref", ref, "digest", h.String())

	if opts.CheckBlobs {
		if err := checkBlobs(ctx, f, body, h, 0); err != nil {
			return nil, err
		}
	}

	oopts := opts.Registry.ociOptions(ctx)
	sigTag, err := ociremote.SignatureTag(digest, oopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	sigs, err := ociremote.Signatures(sigTag, oopts...)
	if err != nil {
		return nil, registryError("fetching signatures "+sigTag.String(), err)
	}
	sl, err := sigs.Get()
	if err != nil {
		return nil, registryError("reading signatures "+sigTag.String(), err)
	}
	var sigErr error // why no .sig signature verified
	if len(sl) > 0 {
		res, err := verifySignatures(ctx, h, sl, nil, policy, opts)
		if err == nil {
			res.Ref = ref
			log.Debug("verified", "digest", res.Digest, "key", res.Key, "signatures", res.Signatures)
			return res, nil
		}
		sigErr = err
	}
	// No .sig signature verifies: look for cosign v3 bundles too.
	bundles, berr := fetchBundles(digest, oopts)
	if berr != nil {
		log.Debug("no referrers", "digest", h.String(), "err", berr)
	}
	if len(bundles) == 0 && sigErr != nil {
		return nil, fmt.Errorf("%s: %w", digest, sigErr)
	}
	if len(sl) == 0 && len(bundles) == 0 {
		unsigned := fmt.Errorf("%w: %s has no signatures (no %s, no Sigstore bundle referrer)", ErrUnsigned, digest, sigTag.TagStr())
		if isTag {
			if others := otherSignedDigests(ctx, repo, h, opts.Registry); len(others) > 0 {
				return nil, fmt.Errorf("%w: %w: tag %s now points to %s; signatures found are for %s",
					ErrUnsigned, ErrTagMoved, r, h, strings.Join(others, ", "))
			}
		}
		return nil, unsigned
	}
	// The .sig signatures (already refused) are checked again beside the
	// bundles only so that a refusal explains all of them together.
	res, err := verifySignatures(ctx, h, sl, bundles, policy, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", digest, err)
	}
	res.Ref = ref
	log.Debug("verified", "digest", res.Digest, "key", res.Key, "signatures", res.Signatures)
	return res, nil
}

// VerifyLocal checks signatures that were fetched earlier (for example the
// [VerifyResult.Verified] of a [Verify], cached beside a pulled artifact)
// against policy for the manifest digest ("sha256:<hex>"), without any
// network. With a policy of keys it takes well under a millisecond; see
// BenchmarkVerifyLocal. Errors are those of [Verify] that apply.
func VerifyLocal(ctx context.Context, digest string, sigs []Signature, policy Policy, opts VerifyOptions) (*VerifyResult, error) {
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("%w: digest %q: %v", ErrInvalidReference, digest, err)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: %s: no cached signatures", ErrUnsigned, h)
	}
	sl := make([]oci.Signature, 0, len(sigs))
	var bundles [][]byte
	for i, s := range sigs {
		if len(s.Bundle) > 0 {
			bundles = append(bundles, s.Bundle)
			continue
		}
		ann := make(map[string]string, len(s.Annotations))
		for k, v := range s.Annotations {
			ann[k] = v
		}
		osig, err := static.NewSignature(s.Payload, s.Base64, static.WithAnnotations(ann))
		if err != nil {
			return nil, fmt.Errorf("%w: cached signature %d: %v", ErrInvalidReference, i, err)
		}
		sl = append(sl, osig)
	}
	res, err := verifySignatures(ctx, h, sl, bundles, policy, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	res.Ref = digest
	return res, nil
}

// keyVerifier is a policy key ready to check signatures.
type keyVerifier struct {
	key Key
	id  string
	v   signature.Verifier
}

// outcome of checking one signature against the policy.
type sigOutcome struct {
	ok       bool
	key      *keyVerifier
	identity *Identity
	subject  string
	issuer   string
	// failures that matter for the error message
	payloadDigest string // set when the crypto verified but the payload names another digest
	annotations   bool   // set when the crypto verified but required annotations are missing
	certReason    string // why a certificate did not verify
	note          string // why a Sigstore bundle cannot count (keyless, an attestation, unreadable)
}

// verifySignatures checks .sig signatures (sl) and Sigstore bundles (JSON)
// against the policy.
func verifySignatures(ctx context.Context, h v1.Hash, sl []oci.Signature, bundles [][]byte, policy Policy, opts VerifyOptions) (*VerifyResult, error) {
	kvs := make([]keyVerifier, 0, len(policy.Keys))
	for _, k := range policy.Keys {
		// The same verifier cosign verify --key builds (SHA-256).
		v, err := signature.LoadVerifier(k.Public, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%w: policy key %s: %v", ErrInvalidKey, k.label(), err)
		}
		kvs = append(kvs, keyVerifier{key: k, id: KeyID(k.Public), v: v})
	}
	tr := &trustRootOnce{opts: opts.Keyless}

	res := &VerifyResult{Digest: h.String(), Found: len(sl) + len(bundles)}
	var outcomes []sigOutcome
	for _, sig := range sl {
		o := checkSignature(ctx, sig, h, kvs, policy.Identities, tr, opts)
		outcomes = append(outcomes, o)
		if !o.ok {
			continue
		}
		res.Signatures++
		if res.Signatures == 1 {
			if o.key != nil {
				res.Key, res.KeyID = o.key.key.label(), o.key.id
			} else {
				res.Identity, res.Subject, res.Issuer = o.identity, o.subject, o.issuer
			}
		}
		cached, err := toSignature(sig)
		if err == nil {
			res.Verified = append(res.Verified, cached)
		}
	}
	for _, raw := range bundles {
		o := checkBundle(ctx, raw, h, kvs, opts)
		outcomes = append(outcomes, o)
		if !o.ok {
			continue
		}
		res.Signatures++
		if res.Signatures == 1 {
			res.Key, res.KeyID = o.key.key.label(), o.key.id
		}
		res.Verified = append(res.Verified, Signature{Bundle: raw})
	}
	if res.Signatures > 0 {
		return res, nil
	}
	return nil, explain(h, outcomes, kvs, policy, tr)
}

// checkSignature tries one signature against every key, then every
// identity.
func checkSignature(ctx context.Context, sig oci.Signature, h v1.Hash, kvs []keyVerifier, ids []Identity, tr *trustRootOnce, opts VerifyOptions) sigOutcome {
	var o sigOutcome
	for i := range kvs {
		co := &cosign.CheckOpts{SigVerifier: kvs[i].v, IgnoreTlog: true, IgnoreSCT: true, Offline: true}
		if _, err := cosign.VerifyImageSignature(ctx, sig, h, co); err != nil {
			continue // not this key
		}
		if !claimsOK(sig, h, opts.Annotations, &o) {
			continue
		}
		o.ok, o.key = true, &kvs[i]
		return o
	}
	if len(ids) == 0 {
		return o
	}
	cert, err := sig.Cert()
	if err != nil || cert == nil {
		return o
	}
	tm, err := tr.get()
	if err != nil {
		o.certReason = "trust root unavailable"
		return o
	}
	subjects := strings.Join(cryptoutils.GetSubjectAlternateNames(cert), ",")
	issuer := (&cosign.CertExtensions{Cert: cert}).GetIssuer()
	for i := range ids {
		co := &cosign.CheckOpts{
			TrustedMaterial: tm,
			Identities:      []cosign.Identity{toCosignIdentity(ids[i])},
			Offline:         true, // the Rekor bundle in the signature is checked offline
		}
		if _, err := cosign.VerifyImageSignature(ctx, sig, h, co); err != nil {
			o.certReason = fmt.Sprintf("certificate for %s (issuer %s): %v", subjects, issuer, err)
			continue
		}
		if !claimsOK(sig, h, opts.Annotations, &o) {
			continue
		}
		o.ok, o.identity, o.subject, o.issuer = true, &ids[i], subjects, issuer
		return o
	}
	return o
}

func toCosignIdentity(id Identity) cosign.Identity {
	return cosign.Identity{Issuer: id.Issuer, Subject: id.Subject, IssuerRegExp: id.IssuerRegexp, SubjectRegExp: id.SubjectRegexp}
}

// claimsOK checks the payload of a cryptographically valid signature: it
// must be a cosign simple-signing payload naming h, with the required
// annotations. It records why not in o.
func claimsOK(sig oci.Signature, h v1.Hash, want map[string]string, o *sigOutcome) bool {
	p, err := sig.Payload()
	if err != nil {
		o.payloadDigest = "(unreadable payload)"
		return false
	}
	var sci payload.SimpleContainerImage
	if err := json.Unmarshal(p, &sci); err != nil {
		o.payloadDigest = "(not a cosign payload)"
		return false
	}
	if got := sci.Critical.Image.DockerManifestDigest; got != h.String() {
		if got == "" {
			got = "(no digest)"
		}
		o.payloadDigest = got
		return false
	}
	for k, v := range want {
		have, ok := sci.Optional[k]
		if !ok || fmt.Sprint(have) != v {
			o.annotations = true
			return false
		}
	}
	return true
}

// explain turns the outcomes of a failed verification into one precise
// error.
func explain(h v1.Hash, outcomes []sigOutcome, kvs []keyVerifier, policy Policy, tr *trustRootOnce) error {
	n := len(outcomes)
	for _, o := range outcomes {
		if o.payloadDigest != "" {
			return fmt.Errorf("%w: a signature that verifies under the policy names %s, not %s: the signature was copied from another artifact or the artifact changed after signing",
				ErrPayloadMismatch, o.payloadDigest, h)
		}
	}
	for _, o := range outcomes {
		if o.annotations {
			return fmt.Errorf("%w: a signature verifies under the policy but lacks the required annotations", ErrAnnotationMismatch)
		}
	}
	if tr.err != nil {
		return fmt.Errorf("%w: %v", ErrTrustRootUnavailable, tr.err)
	}
	var parts []string
	if len(kvs) > 0 {
		names := make([]string, 0, len(kvs))
		for _, kv := range kvs {
			names = append(names, kv.key.label())
		}
		sort.Strings(names)
		parts = append(parts, fmt.Sprintf("none made by the policy's %d key(s) [%s]", len(kvs), strings.Join(names, ", ")))
	}
	if len(policy.Identities) > 0 {
		ids := make([]string, 0, len(policy.Identities))
		for _, id := range policy.Identities {
			ids = append(ids, id.String())
		}
		p := fmt.Sprintf("none with a certificate for the policy's %d identit(ies) [%s]", len(ids), strings.Join(ids, "; "))
		for _, o := range outcomes {
			if o.certReason != "" {
				p += " (" + o.certReason + ")"
				break
			}
		}
		parts = append(parts, p)
	}
	msg := fmt.Sprintf("%d signature(s) found, %s", n, strings.Join(parts, " and "))
	for _, o := range outcomes {
		if o.note != "" {
			msg += "; one is " + o.note
			break
		}
	}
	return fmt.Errorf("%w: %s", ErrNoMatchingKey, msg)
}

// toSignature copies an oci.Signature into a cacheable Signature.
func toSignature(sig oci.Signature) (Signature, error) {
	p, err := sig.Payload()
	if err != nil {
		return Signature{}, err
	}
	b64, err := sig.Base64Signature()
	if err != nil {
		return Signature{}, err
	}
	ann, err := sig.Annotations()
	if err != nil {
		return Signature{}, err
	}
	var keep map[string]string
	for _, k := range []string{static.CertificateAnnotationKey, static.ChainAnnotationKey, static.BundleAnnotationKey, static.RFC3161TimestampAnnotationKey} {
		if v, ok := ann[k]; ok && v != "" {
			if keep == nil {
				keep = map[string]string{}
			}
			keep[k] = v
		}
	}
	return Signature{Payload: p, Base64: b64, Annotations: keep}, nil
}

// otherSignedDigests lists digests in repo, other than h, that have a .sig
// tag — evidence that a tag was moved from a signed digest. It returns at
// most a few, and nothing if the registry cannot list tags.
func otherSignedDigests(ctx context.Context, repo name.Repository, h v1.Hash, ro RegistryOptions) []string {
	tags, err := remote.List(repo, ro.remoteOptions(ctx)...)
	if err != nil {
		return nil
	}
	const show = 3
	var out []string
	more := 0
	for _, t := range tags {
		hex, ok := strings.CutPrefix(t, "sha256-")
		if !ok {
			continue
		}
		hex, ok = strings.CutSuffix(hex, ".sig")
		if !ok || hex == h.Hex {
			continue
		}
		if len(out) == show {
			more++
			continue
		}
		out = append(out, "sha256:"+hex)
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("and %d more", more))
	}
	return out
}

// ociManifest is the part of an OCI image manifest or index that
// checkBlobs needs.
type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
}

// checkBlobs downloads every blob (and child manifest) that a manifest
// references and checks its digest.
func checkBlobs(ctx context.Context, f *fetcher, body []byte, h v1.Hash, depth int) error {
	if depth > 4 {
		return fmt.Errorf("%w: manifest %s nests indexes too deeply", ErrDigestMismatch, h)
	}
	var m ociManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("%w: manifest %s is not JSON: %v", ErrDigestMismatch, h, err)
	}
	if m.Config != nil && m.Config.Digest.Hex != "" {
		if err := f.blob(ctx, m.Config.Digest, fmt.Sprintf("config blob %s of manifest %s", m.Config.Digest, h)); err != nil {
			return err
		}
	}
	for i, l := range m.Layers {
		if err := f.blob(ctx, l.Digest, fmt.Sprintf("layer %d (%s, %s) of manifest %s", i, l.MediaType, l.Digest, h)); err != nil {
			return err
		}
	}
	for _, c := range m.Manifests {
		cb, _, ch, err := f.manifest(ctx, c.Digest.String())
		if err != nil {
			return fmt.Errorf("manifest %s in index %s: %w", c.Digest, h, err)
		}
		if err := checkBlobs(ctx, f, cb, ch, depth+1); err != nil {
			return err
		}
	}
	return nil
}
