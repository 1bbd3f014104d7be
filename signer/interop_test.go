package signer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// TestInteropCosign proves the formats are cosign's own: signatures and keys
// made by ferry work in the real cosign v2.6.5 and v3.1.3 CLIs, and theirs
// work in ferry. The registry is an in-process CNCF Distribution on loopback;
// cosign runs offline (see testenv.Cosign).
func TestInteropCosign(t *testing.T) {
	ctx := context.Background()
	const pw = "interop-pw"
	reg := testenv.Registry(t)
	v2 := newCosign(t, "v2.6.5", pw)
	v3 := newCosign(t, "v3.1.3", pw)
	dir := t.TempDir()

	// A key pair from ferry...
	fPriv, fPub, err := GenerateKeyPair([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	ferryKeyPath := writeFile(t, dir, "ferry.key", fPriv)
	ferryPubPath := writeFile(t, dir, "ferry.pub", fPub)
	ferryKey, err := LoadPrivateKeyFile(ferryKeyPath, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	ferryPolicy, err := PolicyFromFiles([]string{ferryPubPath})
	if err != nil {
		t.Fatal(err)
	}

	// ...and one from cosign generate-key-pair.
	v2.Run(dir, false, "generate-key-pair")
	cosignKeyPath, cosignPubPath := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	cosignPolicy, err := PolicyFromFiles([]string{cosignPubPath})
	if err != nil {
		t.Fatalf("cosign.pub in ferry: %v", err)
	}

	verifyFerry := func(t *testing.T, a artifact, policy Policy, wantKey string) {
		t.Helper()
		res, err := Verify(ctx, a.Ref(), policy, VerifyOptions{})
		if err != nil {
			t.Fatalf("ferry verify: %v", err)
		}
		if res.Key != wantKey || res.Digest != a.Digest {
			t.Errorf("ferry verify = key %q digest %s; want %q %s", res.Key, res.Digest, wantKey, a.Digest)
		}
	}

	t.Run("ferry signs, cosign v2 and v3 verify", func(t *testing.T) {
		a := pushWasm(t, reg+"/interop/ferry-signed", wasmModule("a"), "")
		if _, err := Sign(ctx, a.Ref(), ferryKey, SignOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*testenv.Cosign{v2, v3} {
			out := c.Run(dir, false, "verify", "--key", ferryPubPath, "--insecure-ignore-tlog", a.Ref())
			t.Logf("%s verify:\n%s", filepath.Base(c.Bin), out)
		}
		// Control: cosign refuses an artifact nobody signed, so the checks
		// above are not vacuous.
		u := pushWasm(t, reg+"/interop/unsigned", wasmModule("u"), "")
		v2.Run(dir, true, "verify", "--key", ferryPubPath, "--insecure-ignore-tlog", u.Ref())
	})

	t.Run("cosign v2 signs, ferry verifies", func(t *testing.T) {
		a := pushWasm(t, reg+"/interop/cosign-v2-signed", wasmModule("b"), "")
		v2.Run(dir, false, "sign", "--key", cosignKeyPath, "--tlog-upload=false", "--yes", a.Ref())
		verifyFerry(t, a, cosignPolicy, cosignPubPath)
	})

	t.Run("cosign v3 legacy format signs, ferry verifies", func(t *testing.T) {
		a := pushWasm(t, reg+"/interop/cosign-v3-signed", wasmModule("c"), "")
		v3.Run(dir, false, "sign", "--key", cosignKeyPath, "--new-bundle-format=false",
			"--use-signing-config=false", "--tlog-upload=false", "--yes", a.Ref())
		verifyFerry(t, a, cosignPolicy, cosignPubPath)
	})

	t.Run("cosign v3 bundle format signs, ferry verifies", func(t *testing.T) {
		a := pushWasm(t, reg+"/interop/cosign-v3-bundle", wasmModule("bundle"), "")
		// A signing config without services: key signing, no Rekor.
		sc := filepath.Join(dir, "signing-config.json")
		v3.Run(dir, false, "signing-config", "create", "--out", sc)
		v3.Run(dir, false, "sign", "--key", cosignKeyPath, "--signing-config", sc, "--yes", a.Ref())
		// cosign itself accepts it...
		v3.Run(dir, false, "verify", "--key", cosignPubPath, "--insecure-ignore-tlog", a.Ref())
		// ...and so does ferry, from the registry and from its cache.
		res, err := Verify(ctx, a.Ref(), cosignPolicy, VerifyOptions{})
		if err != nil {
			t.Fatalf("ferry verify of a cosign v3 bundle: %v", err)
		}
		if res.Key != cosignPubPath || res.Signatures != 1 || len(res.Verified) != 1 || len(res.Verified[0].Bundle) == 0 {
			t.Fatalf("result %+v", res)
		}
		if _, err := VerifyLocal(ctx, a.Digest, res.Verified, cosignPolicy, VerifyOptions{}); err != nil {
			t.Fatalf("VerifyLocal of the cached bundle: %v", err)
		}
		// Another key: refused.
		if _, err := Verify(ctx, a.Ref(), ferryPolicy, VerifyOptions{}); !errors.Is(err, ErrNoMatchingKey) {
			t.Fatalf("verify with another key: %v, want ErrNoMatchingKey", err)
		}
		// The cached bundle does not verify another artifact: the
		// statement names this one.
		other := pushWasm(t, reg+"/interop/cosign-v3-bundle", wasmModule("other"), "")
		if _, err := VerifyLocal(ctx, other.Digest, res.Verified, cosignPolicy, VerifyOptions{}); !errors.Is(err, ErrPayloadMismatch) {
			t.Fatalf("bundle copied to another digest: %v, want ErrPayloadMismatch", err)
		}
		// Required annotations are read from the statement's subject.
		if _, err := VerifyLocal(ctx, a.Digest, res.Verified, cosignPolicy, VerifyOptions{Annotations: map[string]string{"env": "prod"}}); !errors.Is(err, ErrAnnotationMismatch) {
			t.Fatalf("missing annotation: %v, want ErrAnnotationMismatch", err)
		}
		b := pushWasm(t, reg+"/interop/cosign-v3-bundle", wasmModule("annotated"), "")
		v3.Run(dir, false, "sign", "--key", cosignKeyPath, "--signing-config", sc, "-a", "env=prod", "--yes", b.Ref())
		if _, err := Verify(ctx, b.Ref(), cosignPolicy, VerifyOptions{Annotations: map[string]string{"env": "prod"}}); err != nil {
			t.Fatalf("annotated bundle: %v", err)
		}
	})

	t.Run("a cosign v3 attestation is not a signature", func(t *testing.T) {
		a := pushWasm(t, reg+"/interop/cosign-v3-attest", wasmModule("attest"), "")
		sc := filepath.Join(dir, "signing-config.json")
		v3.Run(dir, false, "signing-config", "create", "--out", sc)
		pred := writeFile(t, dir, "predicate.json", []byte(`{"built":"yes"}`))
		v3.Run(dir, false, "attest", "--key", cosignKeyPath, "--signing-config", sc, "--type", "custom", "--predicate", pred, "--yes", a.Ref())
		_, err := Verify(ctx, a.Ref(), cosignPolicy, VerifyOptions{})
		if !errors.Is(err, ErrNoMatchingKey) || !strings.Contains(err.Error(), "attestation") {
			t.Fatalf("err = %v, want ErrNoMatchingKey naming the attestation", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("cosign key pair works in ferry", func(t *testing.T) {
		k, err := LoadPrivateKeyFile(cosignKeyPath, []byte(pw))
		if err != nil {
			t.Fatalf("cosign.key in ferry: %v", err)
		}
		a := pushWasm(t, reg+"/interop/cosign-key", wasmModule("d"), "")
		if _, err := Sign(ctx, a.Ref(), k, SignOptions{}); err != nil {
			t.Fatal(err)
		}
		verifyFerry(t, a, cosignPolicy, cosignPubPath)
		v2.Run(dir, false, "verify", "--key", cosignPubPath, "--insecure-ignore-tlog", a.Ref())
	})

	t.Run("ferry key pair works in cosign", func(t *testing.T) {
		a := pushWasm(t, reg+"/interop/ferry-key", wasmModule("e"), "")
		v2.Run(dir, false, "sign", "--key", ferryKeyPath, "--tlog-upload=false", "--yes", a.Ref())
		verifyFerry(t, a, ferryPolicy, ferryPubPath)
		v3.Run(dir, false, "verify", "--key", ferryPubPath, "--insecure-ignore-tlog", a.Ref())
	})
}
