package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// signWithCert stores a signature that carries a certificate for
// subject/issuer, shaped like a keyless (Fulcio) signature. The certificate
// is self-issued: no Sigstore service is reachable here, so only the paths
// up to the trust root can be exercised.
func signWithCert(t *testing.T, a artifact, subject, issuer string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Fulcio's OIDC issuer extension (the v1 OID holds the raw string).
	issuerExt := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "sigstore-intermediate-test"},
		NotBefore:       time.Now().Add(-time.Minute),
		NotAfter:        time.Now().Add(10 * time.Minute),
		EmailAddresses:  []string{subject},
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{issuerExt},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(a.Ref())
	if err != nil {
		t.Fatal(err)
	}
	pl, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw), static.WithCertChain(certPEM, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(d), sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se); err != nil {
		t.Fatal(err)
	}
}

func TestKeyless(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	const subject, issuer = "release@ferry.example", "https://accounts.example"
	certSigned := pushWasm(t, reg+"/keyless/cert", wasmModule("cert"), "")
	signWithCert(t, certSigned, subject, issuer)
	key, pub := testKey(t, "k.pub")
	keySigned := pushWasm(t, reg+"/keyless/key", wasmModule("key"), "")
	if _, err := Sign(ctx, keySigned.Ref(), key, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	ids := []Identity{{Issuer: issuer, Subject: subject}}
	// A TUF mirror on a loopback port where nothing listens: the trust root
	// cannot be fetched, and no traffic leaves the machine.
	unreachable := KeylessOptions{TUFMirror: "http://" + testenv.FreeAddr(t), TUFCacheDir: t.TempDir()}

	for _, tc := range []struct {
		name    string
		a       artifact
		policy  Policy
		keyless KeylessOptions
		wantErr error
		msgs    []string
		wantKey string
	}{{
		name: "TUF mirror unreachable", a: certSigned, policy: Policy{Identities: ids}, keyless: unreachable,
		wantErr: ErrTrustRootUnavailable,
		msgs:    []string{"keyless verification needs the Sigstore trust root (Fulcio/Rekor): TUF mirror http://127.0.0.1:", "not reachable", "connection refused"},
	}, {
		name: "trusted root file missing", a: certSigned, policy: Policy{Identities: ids},
		keyless: KeylessOptions{TrustedRootFile: filepath.Join(t.TempDir(), "trusted_root.json")},
		wantErr: ErrTrustRootUnavailable, msgs: []string{"trusted_root.json", "no such file"},
	}, {
		name: "identity policy, key signature", a: keySigned, policy: Policy{Identities: ids}, keyless: unreachable,
		wantErr: ErrNoMatchingKey, msgs: []string{"1 signature(s) found, none with a certificate for the policy's 1 identit(ies) [issuer=https://accounts.example subject=release@ferry.example]"},
	}, {
		name: "keys and identities, key signature needs no trust root", a: keySigned,
		policy: Policy{Keys: []Key{pub}, Identities: ids}, keyless: unreachable, wantKey: "k.pub",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(ctx, tc.a.Ref(), tc.policy, VerifyOptions{Keyless: tc.keyless})
			if tc.wantErr == nil {
				if err != nil || res.Key != tc.wantKey {
					t.Fatalf("Verify = %+v, %v; want key %q", res, err, tc.wantKey)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			t.Logf("refused: %v", err)
			for _, m := range tc.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %v\nwant it to mention %q", err, m)
				}
			}
		})
	}
}
