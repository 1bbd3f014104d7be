package registry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/registry"
)

// BenchmarkPushUnchanged re-pushes an app the registry holds; the
// blobs/op and writes/op metrics must stay 0.
func BenchmarkPushUnchanged(b *testing.B) {
	ctx := context.Background()
	px := startProxy(b, startServer(b).Addr())
	c := newClient(b, registry.Options{})
	app, modules := testApp("v1")
	for name := range modules {
		modules[name] = wasmModule(name + strings.Repeat("x", 2<<20))
	}
	if _, err := c.PushApp(ctx, px.Addr+"/apps/hello", app, modules, registry.PushOptions{Tags: []string{"v1"}}); err != nil {
		b.Fatal(err)
	}
	px.reset()
	uploaded := 0
	for b.Loop() {
		res, err := c.PushApp(ctx, px.Addr+"/apps/hello", app, modules, registry.PushOptions{Tags: []string{"v1"}})
		if err != nil {
			b.Fatal(err)
		}
		uploaded += res.Uploaded
	}
	b.ReportMetric(float64(uploaded)/float64(b.N), "blobs/op")
	b.ReportMetric(float64(px.writes())/float64(b.N), "writes/op")
}

// BenchmarkPushNew pushes an app whose two 2 MiB modules are new each time.
func BenchmarkPushNew(b *testing.B) {
	ctx := context.Background()
	addr := startServer(b).Addr()
	c := newClient(b, registry.Options{})
	i := 0
	for b.Loop() {
		i++
		app, modules := testApp(fmt.Sprint(i))
		for name := range modules {
			modules[name] = wasmModule(name + fmt.Sprint(i) + strings.Repeat("x", 2<<20))
		}
		if _, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(2 * (2 << 20))
}

func benchPull(b *testing.B, cached bool) {
	ctx := context.Background()
	addr := startServer(b).Addr()
	app, modules := testApp("v1")
	for name := range modules {
		modules[name] = wasmModule(name + strings.Repeat("x", 2<<20))
	}
	c := newClient(b, registry.Options{})
	res, err := c.PushApp(ctx, addr+"/apps/hello", app, modules, registry.PushOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if cached {
		if _, err := c.PullApp(ctx, res.Ref); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(2 * (2 << 20))
	for b.Loop() {
		pc := c
		if !cached {
			b.StopTimer()
			pc = newClient(b, registry.Options{})
			b.StartTimer()
		}
		p, err := pc.PullApp(ctx, res.Ref)
		if err != nil {
			b.Fatal(err)
		}
		if p.FromCache != cached {
			b.Fatalf("FromCache = %v", p.FromCache)
		}
	}
}

// BenchmarkPullNetwork pulls an app with two 2 MiB modules into an empty
// cache.
func BenchmarkPullNetwork(b *testing.B) { benchPull(b, false) }

// BenchmarkPullCached pulls the same app again: cache only, digests
// verified.
func BenchmarkPullCached(b *testing.B) { benchPull(b, true) }
