package signer_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
)

// How `ferry keygen` uses the package: password from the environment or a
// prompt, then the two files cosign also writes. Loading them back gives
// the same key.
func ExampleGenerateKeyPair() {
	dir, err := os.MkdirTemp("", "ferry-keygen-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// The CLI's terminal prompt; nil when not a terminal (then ReadPassword
	// fails with ErrNoPassword unless FERRY_PASSWORD or COSIGN_PASSWORD is set).
	prompt := func(confirm bool) ([]byte, error) { return []byte("example password"), nil }
	pw, err := signer.ReadPassword(prompt, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	priv, pub, err := signer.GenerateKeyPair(pw)
	if err != nil {
		fmt.Println(err)
		return
	}
	keyPath, pubPath := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
		fmt.Println(err)
		return
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range []string{keyPath, pubPath} {
		b, _ := os.ReadFile(f)
		blk, _ := pem.Decode(b)
		if blk == nil {
			fmt.Println(filepath.Base(f), "is not PEM")
			continue
		}
		fmt.Printf("%s: %s\n", filepath.Base(f), blk.Type)
	}
	key, err := signer.LoadPrivateKeyFile(keyPath, pw)
	if err != nil {
		fmt.Println(err)
		return
	}
	pk, err := signer.LoadPublicKeyFile(pubPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the public file is the private key's:", key.KeyID() == signer.KeyID(pk.Public))
	_, err = signer.LoadPrivateKeyFile(keyPath, []byte("not the password"))
	fmt.Println("wrong password refused:", errors.Is(err, signer.ErrWrongPassword))
	// Output:
	// cosign.key: ENCRYPTED SIGSTORE PRIVATE KEY
	// cosign.pub: PUBLIC KEY
	// the public file is the private key's: true
	// wrong password refused: true
}

// How `ferry sign REF` and `ferry verify REF` use the package, against an
// embedded registry on loopback holding one Wasm artifact.
func ExampleSign() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferry-sign-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.NewServer(ctx, embedded.Options{Dir: filepath.Join(dir, "registry")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	repo := srv.Addr() + "/apps/hello"
	if err := pushExampleWasm(ctx, repo, "v1"); err != nil {
		fmt.Println(err)
		return
	}
	priv, pub, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		fmt.Println(err)
		return
	}
	pubPath := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		fmt.Println(err)
		return
	}
	key, err := signer.LoadPrivateKey(priv, []byte("pw"))
	if err != nil {
		fmt.Println(err)
		return
	}

	// Sign accepts digests only; resolve a tag explicitly if the user gave one.
	ref, err := signer.Resolve(ctx, repo+":v1", signer.RegistryOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = signer.Sign(ctx, repo+":v1", key, signer.SignOptions{})
	fmt.Println("signing a tag refused:", errors.Is(err, signer.ErrTagReference))
	res, err := signer.Sign(ctx, ref, key, signer.SignOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("signed the resolved digest:", ref == repo+"@"+res.Digest)
	fmt.Println("signature stored at:", strings.TrimPrefix(res.SignatureRef, repo+":") == strings.Replace(res.Digest, ":", "-", 1)+".sig")

	policy, err := signer.PolicyFromFiles([]string{pubPath})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := signer.Verify(ctx, ref, policy, signer.VerifyOptions{})
	if err != nil {
		fmt.Println(err) // errors.Is(err, signer.ErrUnsigned), ErrNoMatchingKey, ...
		return
	}
	fmt.Println("verified with", filepath.Base(v.Key), "signatures:", v.Signatures)

	// Another key's policy does not accept it.
	_, otherPub, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		fmt.Println(err)
		return
	}
	otherPath := filepath.Join(dir, "other.pub")
	if err := os.WriteFile(otherPath, otherPub, 0o644); err != nil {
		fmt.Println(err)
		return
	}
	other, err := signer.PolicyFromFiles([]string{otherPath})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = signer.Verify(ctx, ref, other, signer.VerifyOptions{})
	fmt.Println("another key refused:", errors.Is(err, signer.ErrNoMatchingKey))
	// Output:
	// signing a tag refused: true
	// signed the resolved digest: true
	// signature stored at: true
	// verified with cosign.pub signatures: 1
	// another key refused: true
}

// pushExampleWasm pushes a one-layer CNCF Wasm artifact to repo (a loopback
// registry, over plain HTTP) and tags it.
func pushExampleWasm(ctx context.Context, repoRef, tag string) error {
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		return err
	}
	repo.PlainHTTP = true
	cfg, err := oras.PushBytes(ctx, repo, "application/vnd.wasm.config.v0+json", []byte(`{"architecture":"wasm","os":"wasip1"}`))
	if err != nil {
		return err
	}
	layer, err := oras.PushBytes(ctx, repo, "application/wasm", []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		return err
	}
	man, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "", oras.PackManifestOptions{
		ConfigDescriptor: &cfg, Layers: []ocispec.Descriptor{layer},
	})
	if err != nil {
		return err
	}
	return repo.Tag(ctx, man, tag)
}
