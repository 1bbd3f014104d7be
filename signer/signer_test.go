package signer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	a := pushWasm(t, reg+"/ferry/app", wasmModule("v1"), "v1")
	key, pub := testKey(t, "release.pub")
	policy := Policy{Keys: []Key{pub}}

	sr, err := Sign(ctx, a.Ref(), key, SignOptions{Annotations: map[string]string{"dev.ferry/commit": "abc123"}})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if sr.Digest != a.Digest || sr.SignatureRef != a.Repo+":"+sigTag(a.Digest) || sr.KeyID != KeyID(pub.Public) {
		t.Errorf("SignResult = %+v", sr)
	}

	want := &VerifyResult{
		Digest: a.Digest, Key: "release.pub", KeyID: KeyID(pub.Public),
		Signatures: 1, Found: 1, Verified: []Signature{sr.Signature},
	}
	for _, tc := range []struct {
		name string
		ref  string
		opts VerifyOptions
	}{
		{"by digest", a.Ref(), VerifyOptions{}},
		{"by tag", a.Repo + ":v1", VerifyOptions{}},
		{"with blobs", a.Ref(), VerifyOptions{CheckBlobs: true}},
		{"with annotations", a.Ref(), VerifyOptions{Annotations: map[string]string{"dev.ferry/commit": "abc123"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(ctx, tc.ref, policy, tc.opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			w := *want
			w.Ref = tc.ref
			if d := cmp.Diff(&w, got); d != "" {
				t.Errorf("VerifyResult (-want +got):\n%s", d)
			}
		})
	}

	t.Run("missing annotation", func(t *testing.T) {
		_, err := Verify(ctx, a.Ref(), policy, VerifyOptions{Annotations: map[string]string{"dev.ferry/commit": "other"}})
		if !errors.Is(err, ErrAnnotationMismatch) {
			t.Fatalf("err = %v, want ErrAnnotationMismatch", err)
		}
	})

	t.Run("signing twice stores one signature", func(t *testing.T) {
		if _, err := Sign(ctx, a.Ref(), key, SignOptions{Annotations: map[string]string{"dev.ferry/commit": "abc123"}}); err != nil {
			t.Fatal(err)
		}
		got, err := Verify(ctx, a.Ref(), policy, VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Found != 1 {
			t.Errorf("Found = %d signatures after signing twice, want 1", got.Found)
		}
	})

	t.Run("local", func(t *testing.T) {
		got, err := VerifyLocal(ctx, a.Digest, []Signature{sr.Signature}, policy, VerifyOptions{})
		if err != nil {
			t.Fatalf("VerifyLocal: %v", err)
		}
		if got.Key != "release.pub" || got.Signatures != 1 {
			t.Errorf("VerifyLocal = %+v", got)
		}
		// The cached signature is for a.Digest only.
		other := pushWasm(t, reg+"/ferry/app", wasmModule("v2"), "")
		_, err = VerifyLocal(ctx, other.Digest, []Signature{sr.Signature}, policy, VerifyOptions{})
		if !errors.Is(err, ErrPayloadMismatch) {
			t.Errorf("VerifyLocal for another digest: err = %v, want ErrPayloadMismatch", err)
		}
		bad := sr.Signature
		bad.Base64 = strings.Repeat("A", len(bad.Base64))
		_, err = VerifyLocal(ctx, a.Digest, []Signature{bad}, policy, VerifyOptions{})
		if !errors.Is(err, ErrNoMatchingKey) {
			t.Errorf("VerifyLocal with a corrupt signature: err = %v, want ErrNoMatchingKey", err)
		}
		_, err = VerifyLocal(ctx, a.Digest, nil, policy, VerifyOptions{})
		if !errors.Is(err, ErrUnsigned) {
			t.Errorf("VerifyLocal without signatures: err = %v, want ErrUnsigned", err)
		}
	})
}

func TestSignRefuses(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	a := pushWasm(t, reg+"/ferry/app", wasmModule("v1"), "v1")
	key, _ := testKey(t, "k")
	missing := a.Repo + "@sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		ref     string
		want    error
		message string
	}{
		{a.Repo + ":v1", ErrTagReference, "is a tag"},
		{a.Repo, ErrTagReference, "is a tag"}, // implicit :latest
		{missing, ErrNotFound, "not found"},
		{"", ErrInvalidReference, "empty"},
		{"UPPER/Case@sha256:zz", ErrInvalidReference, "invalid"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := Sign(ctx, tc.ref, key, SignOptions{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Sign(%q) err = %v, want %v mentioning %q", tc.ref, err, tc.want, tc.message)
			}
		})
	}
	if _, err := Sign(ctx, a.Ref(), nil, SignOptions{}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Sign with nil key: err = %v, want ErrInvalidKey", err)
	}
}

// TestTampering covers each way an artifact can be changed or mis-signed,
// each refused with its own error and a message that says which.
func TestTampering(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	proxy := newTamperProxy(t, reg)
	key, pub := testKey(t, "trusted.pub")
	other, _ := testKey(t, "other.pub")
	policy := Policy{Keys: []Key{pub}}
	sign := func(t *testing.T, a artifact, k *PrivateKey) {
		t.Helper()
		if _, err := Sign(ctx, a.Ref(), k, SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, repo string) (ref string, opts VerifyOptions)
		want  []error
		msg   []string
	}{{
		name: "unsigned artifact",
		setup: func(t *testing.T, repo string) (string, VerifyOptions) {
			a := pushWasm(t, repo, wasmModule("unsigned"), "")
			return a.Ref(), VerifyOptions{}
		},
		want: []error{ErrUnsigned},
		msg:  []string{"has no signatures"},
	}, {
		name: "wrong key",
		setup: func(t *testing.T, repo string) (string, VerifyOptions) {
			a := pushWasm(t, repo, wasmModule("wrong-key"), "")
			sign(t, a, other)
			return a.Ref(), VerifyOptions{}
		},
		want: []error{ErrNoMatchingKey},
		msg:  []string{"1 signature(s) found, none made by the policy's 1 key(s) [trusted.pub]"},
	}, {
		name: "changed layer blob",
		setup: func(t *testing.T, repo string) (string, VerifyOptions) {
			a := pushWasm(t, repo, wasmModule("layer"), "")
			sign(t, a, key)
			ref := strings.Replace(a.Ref(), reg, proxy.Addr, 1)
			// Control: through the proxy, untampered, it verifies.
			if _, err := Verify(ctx, ref, policy, VerifyOptions{CheckBlobs: true}); err != nil {
				t.Fatalf("untampered: %v", err)
			}
			path := "/v2/" + strings.TrimPrefix(repo, reg+"/") + "/blobs/" + a.Layer.Digest.String()
			proxy.Replace(path, wasmModule("evil"))
			return ref, VerifyOptions{CheckBlobs: true}
		},
		want: []error{ErrDigestMismatch},
		msg:  []string{"layer 0 (application/wasm, sha256:", "the blob was changed"},
	}, {
		name: "changed manifest in place",
		setup: func(t *testing.T, repo string) (string, VerifyOptions) {
			a := pushWasm(t, repo, wasmModule("manifest"), "")
			sign(t, a, key)
			path := "/v2/" + strings.TrimPrefix(repo, reg+"/") + "/manifests/" + a.Digest
			body := fetchRaw(t, reg, path, "application/vnd.oci.image.manifest.v1+json")
			evil := strings.Replace(string(body), a.Layer.Digest.String(), "sha256:"+strings.Repeat("e", 64), 1)
			proxy.Replace(path, []byte(evil))
			return strings.Replace(a.Ref(), reg, proxy.Addr, 1), VerifyOptions{}
		},
		want: []error{ErrDigestMismatch},
		msg:  []string{"the manifest was changed"},
	}, {
		name: "changed manifest with copied signature",
		setup: func(t *testing.T, repo string) (string, VerifyOptions) {
			good := pushWasm(t, repo, wasmModule("good"), "")
			sign(t, good, key)
			evil := pushWasm(t, repo, wasmModule("evil"), "")
			copyTag(t, repo, sigTag(good.Digest), sigTag(evil.Digest))
			return evil.Ref(), VerifyOptions{}
		},
		want: []error{ErrPayloadMismatch},
		msg:  []string{"names sha256:", "copied from another artifact"},
	}, {
		name: "re-pointed tag",
		setup: func(t *testing.T, repo string) (string, VerifyOptions) {
			d1 := pushWasm(t, repo, wasmModule("d1"), "stable")
			sign(t, d1, key)
			d2 := pushWasm(t, repo, wasmModule("d2"), "stable")
			t.Cleanup(func() {
				// The message names both digests.
				_, err := Verify(ctx, repo+":stable", policy, VerifyOptions{})
				want := fmt.Sprintf("tag %s:stable now points to %s; signatures found are for %s", repo, d2.Digest, d1.Digest)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v\nwant it to contain %q", err, want)
				}
			})
			return repo + ":stable", VerifyOptions{}
		},
		want: []error{ErrUnsigned, ErrTagMoved},
		msg:  []string{"now points to", "signatures found are for"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			repo := reg + "/tamper/" + strings.ReplaceAll(tc.name, " ", "-")
			ref, opts := tc.setup(t, repo)
			res, err := Verify(ctx, ref, policy, opts)
			if err == nil {
				t.Fatalf("Verify(%s) = %+v, want an error", ref, res)
			}
			t.Logf("refused: %v", err)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v\nwant errors.Is(err, %v)", err, w)
				}
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %v\nwant it to mention %q", err, m)
				}
			}
			// Each case is caught by exactly its own sentinel(s).
			for _, s := range []error{ErrUnsigned, ErrNoMatchingKey, ErrDigestMismatch, ErrPayloadMismatch, ErrTagMoved} {
				mine := false
				for _, w := range tc.want {
					mine = mine || w == s
				}
				if !mine && errors.Is(err, s) {
					t.Errorf("err = %v also matches %v", err, s)
				}
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	oldKey, oldPub := testKey(t, "2024.pub")
	newKey, newPub := testKey(t, "2025.pub")
	both := Policy{Keys: []Key{oldPub, newPub}}

	byNew := pushWasm(t, reg+"/rot/a", wasmModule("new"), "")
	byOld := pushWasm(t, reg+"/rot/b", wasmModule("old"), "")
	byBoth := pushWasm(t, reg+"/rot/c", wasmModule("both"), "")
	for _, s := range []struct {
		a artifact
		k []*PrivateKey
	}{{byNew, []*PrivateKey{newKey}}, {byOld, []*PrivateKey{oldKey}}, {byBoth, []*PrivateKey{oldKey, newKey}}} {
		for _, k := range s.k {
			if _, err := Sign(ctx, s.a.Ref(), k, SignOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, tc := range []struct {
		name    string
		a       artifact
		policy  Policy
		wantKey string
		wantN   int
		wantErr error
	}{
		{"second key verifies", byNew, both, "2025.pub", 1, nil},
		{"first key verifies", byOld, both, "2024.pub", 1, nil},
		{"both signatures count", byBoth, both, "2024.pub", 2, nil},
		{"old key removed", byOld, Policy{Keys: []Key{newPub}}, "", 0, ErrNoMatchingKey},
		{"re-signed artifact survives removal", byBoth, Policy{Keys: []Key{newPub}}, "2025.pub", 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(ctx, tc.a.Ref(), tc.policy, VerifyOptions{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Key != tc.wantKey || res.Signatures != tc.wantN {
				t.Errorf("Key = %q, Signatures = %d; want %q, %d", res.Key, res.Signatures, tc.wantKey, tc.wantN)
			}
		})
	}
}

// TestSignIndex signs an app stored as an OCI index of components: the
// index digest is what is signed, and CheckBlobs walks into every component.
func TestSignIndex(t *testing.T) {
	ctx := context.Background()
	reg := testenv.Registry(t)
	proxy := newTamperProxy(t, reg)
	repo := reg + "/ferry/indexed"
	c1 := pushWasm(t, repo, wasmModule("frontend"), "")
	c2 := pushWasm(t, repo, wasmModule("api"), "")
	index := pushIndex(t, repo, c1, c2)
	key, pub := testKey(t, "k.pub")
	if _, err := Sign(ctx, index.Ref(), key, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	policy := Policy{Keys: []Key{pub}}
	ref := strings.Replace(index.Ref(), reg, proxy.Addr, 1)
	if _, err := Verify(ctx, ref, policy, VerifyOptions{CheckBlobs: true}); err != nil {
		t.Fatalf("Verify index: %v", err)
	}
	// A component is not signed on its own: only the app index is.
	if _, err := Verify(ctx, c1.Ref(), policy, VerifyOptions{}); !errors.Is(err, ErrUnsigned) {
		t.Errorf("component: err = %v, want ErrUnsigned", err)
	}
	proxy.Replace("/v2/ferry/indexed/blobs/"+c2.Layer.Digest.String(), wasmModule("evil"))
	_, err := Verify(ctx, ref, policy, VerifyOptions{CheckBlobs: true})
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "of manifest "+c2.Digest) {
		t.Fatalf("tampered component layer: err = %v, want ErrDigestMismatch naming manifest %s", err, c2.Digest)
	}
}
