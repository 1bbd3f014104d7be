package registry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/registry"
)

// countingWriter counts the bytes of a response.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// BenchmarkUpdateBytes is what a device (or any host: they pull through
// this client) downloads for an update that changes one component of
// three: the app is pulled at v1, then v2 with one ~200 KB module changed,
// through a proxy that counts every byte the registry sends. It reports
// the bytes of the v2 pull, the changed module's size, and their ratio
// (the rest is the new manifest and config).
func BenchmarkUpdateBytes(b *testing.B) {
	ctx := context.Background()
	srv := startServer(b)
	up, _ := url.Parse("http://" + srv.Addr())
	rp := httputil.NewSingleHostReverseProxy(up)
	var sent atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.ServeHTTP(countingWriter{w, &sent}, r)
	}))
	defer proxy.Close()
	addr := strings.TrimPrefix(proxy.URL, "http://")

	app := deploy.App{Name: "shop", Components: []deploy.Component{
		{Name: "web", Routes: []string{"/"}},
		{Name: "api", Routes: []string{"/api/..."}},
		{Name: "admin", Routes: []string{"/admin/..."}},
	}}
	mod := func(tag string) []byte { return wasmModule(tag + strings.Repeat(tag[:1], 200_000)) }
	v1mods := map[string][]byte{"web": mod("web v1"), "api": mod("api v1"), "admin": mod("admin v1")}
	pusher := newClient(b, registry.Options{})
	var updateBytes, changed float64
	for i := range b.N {
		v2mods := map[string][]byte{"web": v1mods["web"], "api": mod("api v" + string(rune('2'+i%7))), "admin": v1mods["admin"]}
		v1, err := pusher.PushApp(ctx, addr+"/apps/shop", app, v1mods, registry.PushOptions{})
		if err != nil {
			b.Fatal(err)
		}
		v2, err := pusher.PushApp(ctx, addr+"/apps/shop", app, v2mods, registry.PushOptions{})
		if err != nil {
			b.Fatal(err)
		}
		device := newClient(b, registry.Options{})
		if _, err := device.PullApp(ctx, v1.Ref); err != nil {
			b.Fatal(err)
		}
		sent.Store(0)
		if _, err := device.PullApp(ctx, v2.Ref); err != nil {
			b.Fatal(err)
		}
		updateBytes += float64(sent.Load())
		changed += float64(len(v2mods["api"]))
	}
	b.ReportMetric(updateBytes/float64(b.N), "update-bytes")
	b.ReportMetric(changed/float64(b.N), "changed-module-bytes")
	b.ReportMetric(updateBytes/changed, "update/changed")
}
