package signer

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them
// (test with errors.Is); the message around it says which artifact, key or
// file it is about. Only [ErrRegistry] and [ErrTrustRootUnavailable] can go
// away by retrying; the others need a different input.
var (
	// ErrInvalidReference: the reference cannot be parsed as REPO@DIGEST or
	// REPO:TAG.
	ErrInvalidReference = errors.New("invalid artifact reference")

	// ErrTagReference: signing was asked for a tag. Only digests are signed,
	// because a tag can be moved after the signature is made.
	ErrTagReference = errors.New("tag reference: only digests (REPO@sha256:...) are signed")

	// ErrNotFound: the registry has no manifest for the reference.
	ErrNotFound = errors.New("artifact not found in registry")

	// ErrRegistry: talking to the registry failed (network, authentication,
	// server error). Retrying may help.
	ErrRegistry = errors.New("registry request failed")

	// ErrUnsigned: the artifact has no signatures at all (no sha256-<hex>.sig
	// tag, or an empty one).
	ErrUnsigned = errors.New("artifact is unsigned")

	// ErrTagMoved: a tag now points to a digest other than the one that was
	// signed or expected. It is returned together with ErrUnsigned when the
	// new digest has no signatures.
	ErrTagMoved = errors.New("tag points to a different digest")

	// ErrNoMatchingKey: the artifact is signed, but by none of the policy's
	// keys (or no signature's certificate matches the policy's identities).
	ErrNoMatchingKey = errors.New("no signature matches the trust policy")

	// ErrPayloadMismatch: a signature is valid for one of the policy's keys,
	// but its payload names a different digest than the artifact's: the
	// signature was copied from another artifact, or the artifact changed.
	ErrPayloadMismatch = errors.New("signature payload names a different digest")

	// ErrAnnotationMismatch: a signature is valid but lacks annotations the
	// verifier requires.
	ErrAnnotationMismatch = errors.New("signature annotations do not match")

	// ErrDigestMismatch: content served by the registry does not hash to the
	// digest it was asked for: the manifest or a blob was changed in place.
	ErrDigestMismatch = errors.New("content does not match its digest")

	// ErrEmptyPolicy: a policy with no keys and no identities trusts nothing.
	ErrEmptyPolicy = errors.New("trust policy has no keys and no identities")

	// ErrInvalidKey: a key file or PEM block cannot be used (not PEM, wrong
	// PEM type, unsupported algorithm, public where private is needed...).
	ErrInvalidKey = errors.New("invalid key")

	// ErrWrongPassword: an encrypted private key cannot be decrypted with the
	// given password (or the key file is corrupt).
	ErrWrongPassword = errors.New("wrong password for private key (or corrupt key)")

	// ErrNoPassword: no password in FERRY_PASSWORD / COSIGN_PASSWORD and no
	// way to ask for one.
	ErrNoPassword = errors.New("no password: set FERRY_PASSWORD or COSIGN_PASSWORD")

	// ErrTrustRootUnavailable: keyless verification needs the Sigstore trust
	// root (Fulcio certificates, Rekor and CT log keys) and it could not be
	// loaded or fetched. Retrying when the TUF mirror is reachable may help.
	ErrTrustRootUnavailable = errors.New("keyless verification needs the Sigstore trust root (Fulcio/Rekor)")
)
