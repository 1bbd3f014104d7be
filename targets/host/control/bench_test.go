package control_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

// BenchmarkPutStored measures a PUT of a version the host already holds
// (switching between two): local signature check, deploy with health
// probe, atomic state write, over the real HTTP API.
func BenchmarkPutStored(b *testing.B) {
	trusted, _ := testKeys(b)
	w := newWorld(b, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	var refs []string
	for _, g := range []string{"Hello", "Hallo"} {
		ref := w.push("apps/bench", helloApp("bench"), variant(b, g))
		w.sign(ref, trusted)
		if _, err := w.client.PutApp(ctx, "bench", api.PutRequest{Ref: ref}); err != nil {
			b.Fatal(err)
		}
		refs = append(refs, ref)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := w.client.PutApp(ctx, "bench", api.PutRequest{Ref: refs[i%2]}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore measures bringing back 50 recorded apps (two versions
// each) from the state directory, without a registry.
func BenchmarkRestore(b *testing.B) {
	trusted, _ := testKeys(b)
	w := newWorld(b, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	for i := range 50 {
		name := fmt.Sprintf("app%02d", i)
		for _, g := range []string{"Hello", "Hallo"} {
			ref := w.push("apps/"+name, helloApp(name), variant(b, g))
			w.sign(ref, trusted)
			if _, err := w.client.PutApp(ctx, name, api.PutRequest{Ref: ref}); err != nil {
				b.Fatal(err)
			}
		}
	}
	w.stop()
	b.ResetTimer()
	for range b.N {
		rep := w.start()
		if len(rep.Serving) != 50 {
			b.Fatalf("restored %d", len(rep.Serving))
		}
		b.StopTimer()
		w.stop()
		b.StartTimer()
	}
}
