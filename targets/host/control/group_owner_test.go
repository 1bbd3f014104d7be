package control_test

import (
	"context"
	"testing"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestGroupOwner: a Group's Put records the owner on every host and its
// Observe reports it; when the hosts disagree (one was adopted by another
// spec alone), the merged owner names every owner, so that no spec takes
// the app for its own until it adopts it on all hosts.
func TestGroupOwner(t *testing.T) {
	ctx := context.Background()
	trusted, _ := testKeys(t)
	policy := signer.Policy{Keys: []signer.Key{trusted.pub}}
	w1, w2 := newWorld(t, policy), newWorld(t, policy)
	ref := w1.push("owned", helloApp("owned"), helloWasm(t))
	w1.sign(ref, trusted)
	g, err := driver.NewGroup(w1.client, w2.client)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "git:git.test/a#hosts", "git:git.test/b#hosts"
	if _, err := g.Put(ctx, targets.DesiredApp{Name: "owned", Ref: ref, Digest: digestOf(ref), Owner: a}); err != nil {
		t.Fatal(err)
	}
	obs, err := g.Observe(ctx)
	if err != nil || len(obs) != 1 || obs[0].Owner != a {
		t.Fatalf("after Put: %+v, %v; want one app owned by %s", obs, err, a)
	}
	if _, err := w2.client.PutApp(ctx, "owned", api.PutRequest{Ref: ref, Owner: b}); err != nil {
		t.Fatal(err)
	}
	obs, err = g.Observe(ctx)
	if want := a + " | " + b; err != nil || len(obs) != 1 || obs[0].Owner != want {
		t.Fatalf("hosts disagree: %+v, %v; want owner %q", obs, err, want)
	}
}
