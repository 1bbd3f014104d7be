package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// TestGroupFansOutAndMergesConservatively runs two real hosts behind one
// Group: a Put reaches both; an app missing on one host is reported
// partial (no digest, unhealthy) so a plan updates it; Delete reaches both.
func TestGroupFansOutAndMergesConservatively(t *testing.T) {
	ctx := context.Background()
	trusted, _ := testKeys(t)
	policy := signer.Policy{Keys: []signer.Key{trusted.pub}}
	w1, w2 := newWorld(t, policy), newWorld(t, policy)
	// Both hosts pull from w1's registry.
	ref := w1.push("group-app", helloApp("group-app"), helloWasm(t))
	w1.sign(ref, trusted)
	digest := digestOf(ref)
	clients := []*driver.Client{w1.client, w2.client}
	g, err := driver.NewGroup(clients...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Put(ctx, targets.DesiredApp{Name: "group-app", Ref: ref, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	obs, err := g.Observe(ctx)
	if err != nil || len(obs) != 1 || obs[0].Digest != digest || !obs[0].Healthy {
		t.Fatalf("after Put: %+v, %v; want one healthy app at %s", obs, err, digest)
	}

	// Drift on one host only: the group reports the app partial.
	if err := clients[1].Delete(ctx, "group-app"); err != nil {
		t.Fatal(err)
	}
	obs, err = g.Observe(ctx)
	if err != nil || len(obs) != 1 || obs[0].Digest != "" || obs[0].Healthy || !strings.Contains(obs[0].Message, "missing on "+clients[1].Endpoint()) {
		t.Fatalf("after deleting on one host: %+v, %v; want partial, naming the host", obs, err)
	}

	if err := g.Delete(ctx, "group-app"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if apps, err := c.Observe(ctx); err != nil || len(apps) != 0 {
			t.Fatalf("%s after group Delete: %+v, %v", c.Endpoint(), apps, err)
		}
	}

	// One host unreachable: Observe fails rather than planning from half.
	dead, _ := driver.NewClient("http://127.0.0.1:1", testToken, driver.ClientOptions{})
	g2, _ := driver.NewGroup(clients[0], dead)
	if _, err := g2.Observe(ctx); err == nil || !errors.Is(err, targets.ErrUnavailable) {
		t.Fatalf("Observe with a dead host: %v; want ErrUnavailable", err)
	}
}
