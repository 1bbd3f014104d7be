package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestOwnerRecorded: the owner a PUT sends is what GET and Observe report;
// a rollback, a PUT without owner and a restart keep it; a PUT with another
// owner replaces it (adoption, same digest included); a bad owner is 400
// and changes nothing; a deleted app's owner is forgotten.
func TestOwnerRecorded(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	r1 := w.push("apps/a", helloApp("a"), helloWasm(t))
	r2 := w.push("apps/a", helloApp("a"), variant(t, "Hallo"))
	w.sign(r1, trusted)
	w.sign(r2, trusted)
	const ownerA, ownerB = "git:git.test/acme/a#local", "dir:/srv/b#local"

	owner := func(when string) string {
		t.Helper()
		ai, err := w.client.App(ctx, "a")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		obs, err := w.client.Observe(ctx)
		if err != nil || len(obs) != 1 {
			t.Fatalf("%s: observe %v %v", when, obs, err)
		}
		if obs[0].Owner != ai.Owner {
			t.Errorf("%s: Observe reports owner %q, GET %q", when, obs[0].Owner, ai.Owner)
		}
		return ai.Owner
	}
	if _, err := w.client.Put(ctx, targets.DesiredApp{Name: "a", Ref: r1, Digest: digestOf(r1), Owner: ownerA}); err != nil {
		t.Fatal(err)
	}
	if got := owner("first put"); got != ownerA {
		t.Errorf("after the first put: owner %q, want %q", got, ownerA)
	}
	if _, err := w.client.PutApp(ctx, "a", api.PutRequest{Ref: r2}); err != nil {
		t.Fatal(err)
	}
	if got := owner("put without owner"); got != ownerA {
		t.Errorf("after a put without owner: %q, want %q kept", got, ownerA)
	}
	if _, err := w.client.RollBackApp(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := owner("rollback"); got != ownerA {
		t.Errorf("after a rollback: %q, want %q kept", got, ownerA)
	}
	for _, bad := range []string{"a\nb", strings.Repeat("o", 513)} {
		_, err := w.client.PutApp(ctx, "a", api.PutRequest{Ref: r2, Owner: bad})
		if !errors.Is(err, driver.ErrBadRequest) {
			t.Errorf("put with owner %.12q: %v, want ErrBadRequest", bad, err)
		}
	}
	if got := owner("bad puts"); got != ownerA {
		t.Errorf("after refused puts: %q, want %q", got, ownerA)
	}
	// Adoption at the digest that serves (r1 after the rollback).
	if _, err := w.client.PutApp(ctx, "a", api.PutRequest{Ref: r1, Owner: ownerB}); err != nil {
		t.Fatal(err)
	}
	if got := owner("adopting put"); got != ownerB {
		t.Errorf("after an adopting put of the same digest: %q, want %q", got, ownerB)
	}

	w.stop()
	if rep := w.start(); len(rep.Failed) != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	if got := owner("restart"); got != ownerB {
		t.Errorf("after a restart: %q, want %q", got, ownerB)
	}
	w.wantServes("a.test", "Hello")

	if err := w.client.DeleteApp(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.PutApp(ctx, "a", api.PutRequest{Ref: r1}); err != nil {
		t.Fatal(err)
	}
	if got := owner("put after delete"); got != "" {
		t.Errorf("a new app after a delete has owner %q, want none", got)
	}
}
