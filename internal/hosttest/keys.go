package hosttest

import (
	"testing"

	"github.com/ferry-wasm/ferry/signer"
)

// SecretToken is the control API token of the hosts that the secret tests
// start; the secret scan checks it never shows in any output.
const SecretToken = "secret-rotation-token-0123456789"

// SecretKeys returns a fresh cosign key pair.
func SecretKeys(t *testing.T) (signer.Key, *signer.PrivateKey) {
	t.Helper()
	privPEM, pubPEM, err := signer.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return signer.Key{Name: "test", Public: pub}, priv
}
