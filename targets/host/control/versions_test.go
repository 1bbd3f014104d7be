package control_test

import (
	"context"
	"testing"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// TestPutSameDigestKeepsOlderPrevious: deploying the version that already
// serves again (a redeploy: new secrets, or healing an unhealthy app) must
// not make it its own previous version; a rollback afterwards goes to the
// older version, on the runtime and in the state directory (after a
// restart too).
func TestPutSameDigestKeepsOlderPrevious(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	v1 := w.push("apps/one", helloApp("one"), variant(t, "Hallo"))
	v2 := w.push("apps/one", helloApp("one"), variant(t, "Hullo"))
	w.sign(v1, trusted)
	w.sign(v2, trusted)
	for _, ref := range []string{v1, v2, v2} {
		if _, err := w.client.PutApp(ctx, "one", api.PutRequest{Ref: ref}); err != nil {
			t.Fatalf("put %s: %v", ref, err)
		}
	}
	w.wantServes("one.test", "Hullo")
	ai, err := w.srv.Get("one")
	if err != nil {
		t.Fatal(err)
	}
	if ai.Digest != digestOf(v2) || ai.Previous != digestOf(v1) {
		t.Fatalf("after v1, v2, v2: digest %s previous %s, want %s and previous %s", ai.Digest, ai.Previous, digestOf(v2), digestOf(v1))
	}
	if err := w.client.RollBack(ctx, "one"); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	w.wantServes("one.test", "Hallo")
	ai, _ = w.srv.Get("one")
	if ai.Digest != digestOf(v1) || ai.Previous != digestOf(v2) {
		t.Fatalf("after rollback: digest %s previous %s, want %s and previous %s", ai.Digest, ai.Previous, digestOf(v1), digestOf(v2))
	}

	// The state directory says the same: a restarted host serves v1 with
	// v2 as its previous version.
	w.stop()
	w.start()
	w.wantServes("one.test", "Hallo")
	ai, _ = w.srv.Get("one")
	if ai.Digest != digestOf(v1) || ai.Previous != digestOf(v2) {
		t.Fatalf("after restart: digest %s previous %s, want %s and previous %s", ai.Digest, ai.Previous, digestOf(v1), digestOf(v2))
	}
}
