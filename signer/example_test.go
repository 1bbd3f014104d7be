package signer_test

import (
	"context"
	"fmt"
	"os"

	"github.com/ferry-wasm/ferry/signer"
)

// How `ferry keygen` uses the package: password from the environment or a
// prompt, then the two files cosign also writes.
func ExampleGenerateKeyPair() {
	var prompt signer.PasswordFunc // the CLI's terminal prompt; nil when not a terminal
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
	_ = os.WriteFile("cosign.key", priv, 0o600)
	_ = os.WriteFile("cosign.pub", pub, 0o644)
}

// How `ferry sign REF` and `ferry verify REF` use the package.
func ExampleSign() {
	ctx := context.Background()
	pw, err := signer.ReadPassword(nil, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	key, err := signer.LoadPrivateKeyFile("cosign.key", pw)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Sign accepts digests only; resolve a tag explicitly if the user gave one.
	ref, err := signer.Resolve(ctx, "127.0.0.1:5000/apps/hello:v1", signer.RegistryOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := signer.Sign(ctx, ref, key, signer.SignOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("signed", res.Digest, "->", res.SignatureRef)

	policy, err := signer.PolicyFromFiles([]string{"/etc/ferry/keys/cosign.pub"})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := signer.Verify(ctx, ref, policy, signer.VerifyOptions{})
	if err != nil {
		fmt.Println(err) // errors.Is(err, signer.ErrUnsigned), ErrNoMatchingKey, ...
		return
	}
	fmt.Println("verified", v.Digest, "with", v.Key)
}
