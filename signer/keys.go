package signer

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Environment variables read by [PasswordFromEnv], in order of preference.
const (
	EnvPassword       = "FERRY_PASSWORD"
	EnvCosignPassword = "COSIGN_PASSWORD"
)

// PasswordFunc asks someone for a password, typically on a terminal; the CLI
// supplies it. confirm is true when a new password is being set (a new key),
// so the function should ask twice. It must not log what it reads.
type PasswordFunc func(confirm bool) ([]byte, error)

// PasswordFromEnv returns the password in FERRY_PASSWORD, else in
// COSIGN_PASSWORD. ok is false when neither variable is set; a variable set
// to the empty string means an empty password, as in cosign.
func PasswordFromEnv() (password []byte, ok bool) {
	for _, name := range []string{EnvPassword, EnvCosignPassword} {
		if v, set := os.LookupEnv(name); set {
			return []byte(v), true
		}
	}
	return nil, false
}

// ReadPassword returns the password from the environment ([PasswordFromEnv])
// or, when none is set, from prompt. A nil prompt (no terminal) gives
// [ErrNoPassword].
func ReadPassword(prompt PasswordFunc, confirm bool) ([]byte, error) {
	if pw, ok := PasswordFromEnv(); ok {
		return pw, nil
	}
	if prompt == nil {
		return nil, ErrNoPassword
	}
	pw, err := prompt(confirm)
	if err != nil {
		return nil, fmt.Errorf("reading password: %w", err)
	}
	return pw, nil
}

// GenerateKeyPair makes a new ECDSA P-256 key pair in cosign's format: the
// private key PEM-encoded as "ENCRYPTED SIGSTORE PRIVATE KEY" (scrypt +
// secretbox, encrypted with password, which may be empty) and the public key
// as a PKIX "PUBLIC KEY" PEM block. The files are interchangeable with
// `cosign generate-key-pair` (cosign.key, cosign.pub).
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("generating key pair: %w", err)
	}
	return kb.PrivateBytes, kb.PublicBytes, nil
}

// PrivateKey is a decrypted signing key. It is safe for concurrent use.
// Its zero value is not usable; get one from [LoadPrivateKey].
type PrivateKey struct {
	sv  signature.SignerVerifier
	pub crypto.PublicKey
}

// Public returns the public half of the key.
func (k *PrivateKey) Public() crypto.PublicKey { return k.pub }

// KeyID returns the fingerprint of the public half (see [KeyID]).
func (k *PrivateKey) KeyID() string { return KeyID(k.pub) }

// PublicPEM returns the public half as a PEM "PUBLIC KEY" block, the format
// of cosign.pub.
func (k *PrivateKey) PublicPEM() ([]byte, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding public key: %v", ErrInvalidKey, err)
	}
	return b, nil
}

// LoadPrivateKey decrypts a private key in cosign's encrypted format
// ("ENCRYPTED SIGSTORE PRIVATE KEY" or the older "ENCRYPTED COSIGN PRIVATE
// KEY") with password. A wrong password gives [ErrWrongPassword]; anything
// else that is not such a key gives [ErrInvalidKey] with the reason.
func LoadPrivateKey(pemBytes, password []byte) (*PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%w: not a PEM file", ErrInvalidKey)
	}
	switch block.Type {
	case cosign.SigstorePrivateKeyPemType, cosign.CosignPrivateKeyPemType:
	case "PUBLIC KEY":
		return nil, fmt.Errorf("%w: this is a public key; signing needs the private key (cosign.key)", ErrInvalidKey)
	case cosign.ECPrivateKeyPemType, cosign.RSAPrivateKeyPemType, cosign.PrivateKeyPemType:
		return nil, fmt.Errorf("%w: unencrypted %q PEM block; convert it with `cosign import-key-pair` first", ErrInvalidKey, block.Type)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a cosign private key (want %q)", ErrInvalidKey, block.Type, cosign.SigstorePrivateKeyPemType)
	}
	sv, err := cosign.LoadPrivateKey(pemBytes, password, nil)
	if err != nil {
		// cosign prefixes decryption failures with "decrypt:"; the message
		// never contains the password or key bytes.
		if strings.HasPrefix(err.Error(), "decrypt:") {
			return nil, ErrWrongPassword
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return &PrivateKey{sv: sv, pub: pub}, nil
}

// LoadPrivateKeyFile reads path and decrypts it with [LoadPrivateKey]. Errors
// name the file.
func LoadPrivateKeyFile(path string, password []byte) (*PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKey, path, errReason(err))
	}
	k, err := LoadPrivateKey(b, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadPublicKey parses a PEM "PUBLIC KEY" block (cosign.pub). ECDSA, RSA and
// Ed25519 keys are accepted.
func LoadPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%w: not a PEM file", ErrInvalidKey)
	}
	switch {
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, fmt.Errorf("%w: this is a private key; a trust policy needs the public key (cosign.pub)", ErrInvalidKey)
	case block.Type == "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: parsing certificate: %v", ErrInvalidKey, err)
		}
		return cert.PublicKey, nil
	case block.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("%w: PEM block %q is not a public key", ErrInvalidKey, block.Type)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return pub, nil
}

// KeyID returns a short, stable fingerprint of a public key:
// "SHA256:" followed by the unpadded base64 of the SHA-256 of its PKIX DER
// encoding (the style of ssh-keygen -l). It is "" for a key it cannot encode.
func KeyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// errReason strips the path that os errors repeat, keeping "no such file or
// directory" and the like.
func errReason(err error) error {
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// equalKeys reports whether two public keys are the same.
func equalKeys(a, b crypto.PublicKey) bool {
	da, errA := x509.MarshalPKIXPublicKey(a)
	db, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}
