package signer

import (
	"context"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// benchSetup pushes and signs one artifact with the second of two policy
// keys (the key-rotation case: the first key is tried and fails first).
func benchSetup(b *testing.B) (artifact, *SignResult, Policy) {
	b.Helper()
	reg := testenv.Registry(b)
	a := pushWasm(b, reg+"/bench/app", wasmModule("bench"), "")
	_, oldPub := testKey(b, "old.pub")
	key, newPub := testKey(b, "new.pub")
	sr, err := Sign(context.Background(), a.Ref(), key, SignOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return a, sr, Policy{Keys: []Key{oldPub, newPub}}
}

// BenchmarkVerifyLocal re-verifies a cached signature without network, as a
// target does for an artifact already in its cache. Goal: at most 10 ms.
func BenchmarkVerifyLocal(b *testing.B) {
	a, sr, policy := benchSetup(b)
	ctx := context.Background()
	sigs := []Signature{sr.Signature}
	b.ReportAllocs()
	for b.Loop() {
		res, err := VerifyLocal(ctx, a.Digest, sigs, policy, VerifyOptions{})
		if err != nil || res.Key != "new.pub" {
			b.Fatalf("VerifyLocal = %+v, %v", res, err)
		}
	}
}

// BenchmarkVerify verifies by digest against the in-process registry on
// loopback: manifest fetch and hash, signature manifest and layer fetch,
// signature checks.
func BenchmarkVerify(b *testing.B) {
	a, _, policy := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := Verify(ctx, a.Ref(), policy, VerifyOptions{})
		if err != nil || res.Key != "new.pub" {
			b.Fatalf("Verify = %+v, %v", res, err)
		}
	}
}

// BenchmarkSign signs an already-signed digest again (the duplicate is
// detected and not stored twice) against the loopback registry.
func BenchmarkSign(b *testing.B) {
	reg := testenv.Registry(b)
	a := pushWasm(b, reg+"/bench/sign", wasmModule("sign"), "")
	key, _ := testKey(b, "k.pub")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(ctx, a.Ref(), key, SignOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
