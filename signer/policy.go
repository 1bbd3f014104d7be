package signer

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"regexp"
)

// Key is a trusted public key in a [Policy].
type Key struct {
	// Name says where the key came from (a file path, or a label); it is
	// reported as the matching key and named in errors. May be empty, in
	// which case the key's [KeyID] is used.
	Name string
	// Public is the key: *ecdsa.PublicKey, *rsa.PublicKey or
	// ed25519.PublicKey.
	Public crypto.PublicKey
}

// label is how a key is named in results and messages.
func (k Key) label() string {
	if k.Name != "" {
		return k.Name
	}
	return KeyID(k.Public)
}

// Identity is a keyless signer identity: the OIDC issuer and the subject
// (e-mail, workflow URI, ...) of the Fulcio certificate a signature carries.
// For each of issuer and subject, give either the exact value or a regular
// expression (Go syntax; it matches anywhere unless anchored with ^...$, as
// in cosign's --certificate-identity-regexp), not both.
type Identity struct {
	Issuer        string
	Subject       string
	IssuerRegexp  string
	SubjectRegexp string
}

// String renders the identity for messages.
func (id Identity) String() string {
	iss, sub := id.Issuer, id.Subject
	if iss == "" {
		iss = "~" + id.IssuerRegexp
	}
	if sub == "" {
		sub = "~" + id.SubjectRegexp
	}
	return fmt.Sprintf("issuer=%s subject=%s", iss, sub)
}

func (id Identity) validate() error {
	if id.Issuer == "" && id.IssuerRegexp == "" {
		return fmt.Errorf("identity %s: needs an issuer or issuer regexp", id)
	}
	if id.Subject == "" && id.SubjectRegexp == "" {
		return fmt.Errorf("identity %s: needs a subject or subject regexp", id)
	}
	if id.Issuer != "" && id.IssuerRegexp != "" {
		return fmt.Errorf("identity %s: set issuer or issuer regexp, not both", id)
	}
	if id.Subject != "" && id.SubjectRegexp != "" {
		return fmt.Errorf("identity %s: set subject or subject regexp, not both", id)
	}
	for _, re := range []string{id.IssuerRegexp, id.SubjectRegexp} {
		if re == "" {
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("identity %s: %v", id, err)
		}
	}
	return nil
}

// Policy says who may sign: a signature verifies when it was made by any of
// Keys, or carries a Fulcio certificate that matches any of Identities.
// Several keys are how keys are rotated: add the new key, re-sign, then
// remove the old one. The zero Policy trusts nothing ([ErrEmptyPolicy]).
type Policy struct {
	Keys       []Key
	Identities []Identity
}

// Validate checks that the policy trusts something and that every key and
// identity is usable.
func (p Policy) Validate() error {
	if len(p.Keys) == 0 && len(p.Identities) == 0 {
		return ErrEmptyPolicy
	}
	var errs []error
	for i, k := range p.Keys {
		if k.Public == nil || KeyID(k.Public) == "" {
			errs = append(errs, fmt.Errorf("%w: policy key %d (%s) has no usable public key", ErrInvalidKey, i, k.Name))
		}
	}
	for _, id := range p.Identities {
		if err := id.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrInvalidKey, err))
		}
	}
	return errors.Join(errs...)
}

// PolicyFromFiles builds a policy from PEM public-key files (the spec's
// trust block lists their absolute paths) and keyless identities. Every
// unreadable or invalid file is reported, each as "path: reason", in one
// error wrapping [ErrInvalidKey].
func PolicyFromFiles(keyPaths []string, ids ...Identity) (Policy, error) {
	p := Policy{Identities: ids}
	var errs []error
	for _, path := range keyPaths {
		k, err := LoadPublicKeyFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Keys = append(p.Keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return Policy{}, err
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// LoadPublicKeyFile reads a PEM public key (cosign.pub) from path and returns
// it as a [Key] named by the path. Errors say "path: reason" and wrap
// [ErrInvalidKey].
func LoadPublicKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %s: %v", ErrInvalidKey, path, errReason(err))
	}
	pub, err := LoadPublicKey(b)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return Key{Name: path, Public: pub}, nil
}
