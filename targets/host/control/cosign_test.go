package control_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// TestPutCosignV3Bundle: an app signed by the cosign v3 CLI in its default
// Sigstore bundle format (an OCI referrer, not a .sig tag) is verified by
// the host itself at PUT, serves, and is verified again from the cached
// bundle when the host restarts without its registry.
func TestPutCosignV3Bundle(t *testing.T) {
	dir := t.TempDir()
	cosign := testenv.NewCosign(t, "v3.1.3", "cosign-pw")
	cosign.Run(dir, false, "generate-key-pair")
	pubPEM, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signer.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, signer.Policy{Keys: []signer.Key{{Name: "cosign-v3", Public: pub}}})
	ctx := context.Background()

	ref := w.push("apps/a", helloApp("a"), helloWasm(t))
	// Unsigned first: refused, nothing serves.
	if _, err := w.client.PutApp(ctx, "a", api.PutRequest{Ref: ref}); err == nil || !strings.Contains(err.Error(), "no signatures") {
		t.Fatalf("unsigned put: %v", err)
	}
	sc := filepath.Join(dir, "signing-config.json")
	cosign.Run(dir, false, "signing-config", "create", "--out", sc)
	cosign.Run(dir, false, "sign", "--key", "cosign.key", "--signing-config", sc, "--yes", ref)

	if _, err := w.client.PutApp(ctx, "a", api.PutRequest{Ref: ref}); err != nil {
		t.Fatalf("put of a cosign v3 bundle-signed app: %v", err)
	}
	w.wantServes("a.test", "Hello")
	ai, err := w.client.App(ctx, "a")
	if err != nil || ai.VerifiedBy != "cosign-v3" {
		t.Fatalf("app: %+v %v", ai, err)
	}

	// Restart with the registry gone: the cached bundle verifies locally.
	w.stop()
	if err := w.reg.Close(); err != nil {
		t.Fatal(err)
	}
	rep := w.start()
	if len(rep.Failed) != 0 || len(rep.Serving) != 1 {
		t.Fatalf("restore: %+v", rep)
	}
	w.wantServes("a.test", "Hello")
}
