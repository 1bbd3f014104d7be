// Package signer signs and verifies OCI artifact digests in cosign's formats,
// so that every target can prove that what it runs was signed by a trusted key.
//
// Signatures are cosign "simple signing" payloads over the manifest digest,
// stored in the same repository under the tag sha256-<hex>.sig — the scheme
// that every cosign version (v1, v2 and v3 in its legacy mode) writes and
// verifies. Keys are in cosign's own encrypted file format, so a key made by
// `cosign generate-key-pair` works here and one made by [GenerateKeyPair]
// works in cosign.
//
// [Verify] also reads cosign v3's default format: a Sigstore bundle attached
// to the artifact as an OCI referrer, holding a DSSE envelope whose in-toto
// statement (predicate https://sigstore.dev/cosign/sign/v1) names the
// manifest digest. Bundles made with a key verify like .sig signatures and
// are cached the same way ([Signature].Bundle); attestations (other
// predicates) never count as signatures, and keyless bundles are reported
// as not supported (see bundle.go). [Sign] writes the .sig format, which
// cosign v2 and v3 both verify.
//
// The main entry points:
//
//   - [GenerateKeyPair], [LoadPrivateKey], [LoadPublicKey], [PasswordFromEnv]
//     and [ReadPassword] for keys;
//   - [Sign] signs REPO@sha256:... in a registry;
//   - [Verify] checks a reference in a registry against a [Policy] (any of the
//     policy's keys verifies, which is how keys are rotated);
//   - [VerifyLocal] re-checks signatures that were fetched earlier and cached
//     beside an artifact, without any network;
//   - [PolicyFromFiles] builds a [Policy] from the spec's trust block.
//
// Verification with keys needs no network other than the registry: the
// transparency log and certificate timestamps are not consulted (cosign's
// --insecure-ignore-tlog). Keyless identities (issuer + subject) need the
// Sigstore trust root (from TUF, or a trusted_root.json file); when it cannot
// be had, verification fails with [ErrTrustRootUnavailable].
//
// Every failure wraps one of the sentinel errors in errors.go, so callers can
// tell an unsigned artifact from a wrong key from a tampered one with
// errors.Is. Messages never contain passwords or key material.
//
// All functions are safe for concurrent use; they keep no package state.
package signer
