package control_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// catfileWasm is testdata/catfile.wasm: a WAGI guest that answers with the
// declared file static/index.html, read through WASI path_open on fd 3.
func catfileWasm(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "control", "testdata", "catfile.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// siteApp is a one-component WAGI app declaring the static/ directory.
func siteApp() deploy.App {
	return deploy.App{
		Name:  "site",
		Hosts: []string{"site.test"},
		Components: []deploy.Component{{
			Name: "web", Executor: deploy.ExecutorWAGI, Routes: []string{"/..."},
			Files: []string{"static"}, Health: &deploy.Health{Path: "/healthz"},
		}},
	}
}

// pushSite pushes siteApp with static/index.html holding page and returns
// REPO@DIGEST.
func (w *world) pushSite(page string) string {
	w.t.Helper()
	files := fstest.MapFS{
		"static/index.html": {Data: []byte(page)},
		"static/img/a.txt":  {Data: []byte("another file")},
		"private/key.pem":   {Data: []byte("never packed: not declared")},
	}
	res, err := w.pusher.PushApp(context.Background(), w.regAddr+"/apps/site", siteApp(),
		map[string][]byte{"web": catfileWasm(w.t)}, registry.PushOptions{Pack: registry.PackOptions{Files: map[string]fs.FS{"web": files}}})
	if err != nil {
		w.t.Fatalf("push: %v", err)
	}
	return res.Ref
}

// TestPutAppWithFiles: a component's declared files travel in the artifact
// to the host, which preopens them for the guest; they are kept in the
// state directory so a restart without the registry serves them again, the
// previous version's files too (rollback).
func TestPutAppWithFiles(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()

	v1 := w.pushSite("<h1>page one</h1>\n")
	v2 := w.pushSite("<h1>page two</h1>\n")
	for _, r := range []string{v1, v2} {
		w.sign(r, trusted)
		if _, err := w.client.PutApp(ctx, "site", api.PutRequest{Ref: r}); err != nil {
			t.Fatalf("put %s: %v", r, err)
		}
	}
	code, body := w.get("site.test", "/")
	if code != 200 || body != "<h1>page two</h1>\n" {
		t.Fatalf("GET / = %d %q, want the declared file", code, body)
	}

	// The files archives are in the state directory, content-addressed.
	st, err := state.Open(w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Load("site")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Previous == nil || rec.Current.Files["web"] == "" || rec.Previous.Files["web"] == "" ||
		rec.Current.Files["web"] == rec.Previous.Files["web"] {
		t.Fatalf("record files: current %v previous %+v", rec.Current.Files, rec.Previous)
	}
	blob := func(d string) string {
		return filepath.Join(w.stateDir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	}
	archive, err := os.ReadFile(blob(rec.Current.Files["web"]))
	if err != nil || digest.FromBytes(archive).String() != rec.Current.Files["web"] {
		t.Fatalf("files blob: %v", err)
	}
	if bytes.Contains(archive, []byte("never packed")) {
		t.Fatal("an undeclared file reached the host")
	}

	w.stop()
	if err := w.reg.Close(); err != nil { // the registry is gone from here on
		t.Fatal(err)
	}

	t.Run("restart without registry", func(t *testing.T) {
		rep := w.start()
		if len(rep.Failed) != 0 || fmt.Sprint(rep.Serving) != "[site]" {
			t.Fatalf("restore: %+v", rep)
		}
		w.wantServes("site.test", "page two")
		if err := w.client.RollBack(ctx, "site"); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		w.wantServes("site.test", "page one")
		// PUT of a digest the host holds needs no registry either.
		if _, err := w.client.PutApp(ctx, "site", api.PutRequest{Ref: v2}); err != nil {
			t.Fatalf("put of a held digest: %v", err)
		}
		w.wantServes("site.test", "page two")
		w.stop()
	})

	t.Run("corrupt files blob fails the app", func(t *testing.T) {
		if err := os.WriteFile(blob(rec.Current.Files["web"]), []byte("tampered"), 0o644); err != nil {
			t.Fatal(err)
		}
		rep := w.start()
		if len(rep.Serving) != 0 || !errors.Is(rep.Failed["site"], state.ErrCorrupt) || !strings.Contains(rep.Failed["site"].Error(), `files of component "web"`) {
			t.Fatalf("restore: %+v", rep)
		}
		if code, _ := w.get("site.test", "/"); code != 404 {
			t.Fatalf("site answers %d", code)
		}
		w.stop()
	})
}

// TestPutRefusesUnsafeFiles: an artifact whose files layer holds a
// symbolic link, an absolute path or ".." is refused (422) even when
// signed, and the version before keeps serving.
func TestPutRefusesUnsafeFiles(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	good := w.pushSite("<h1>good</h1>\n")
	w.sign(good, trusted)
	if _, err := w.client.PutApp(ctx, "site", api.PutRequest{Ref: good}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		hdr  tar.Header
	}{
		{"symlink", tar.Header{Name: "static/index.html", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
		{"absolute", tar.Header{Name: "/etc/cron.d/x", Typeflag: tar.TypeReg, Mode: 0o644}},
		{"dot dot", tar.Header{Name: "static/../../x", Typeflag: tar.TypeReg, Mode: 0o644}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := w.pushWithFilesLayer(good, tarOf(t, tc.hdr))
			w.sign(ref, trusted)
			_, err := w.client.PutApp(ctx, "site", api.PutRequest{Ref: ref})
			var ae *driver.APIError
			if !errors.As(err, &ae) || ae.StatusCode != 422 || !errors.Is(err, targets.ErrUnhealthy) ||
				!strings.Contains(err.Error(), `files of "web"`) {
				t.Fatalf("put: %v, want 422 naming the files of \"web\"", err)
			}
			w.wantServes("site.test", "good")
		})
	}
}

func tarOf(t *testing.T, h tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if h.Typeflag == tar.TypeReg {
		h.Size = 1
	}
	if err := tw.WriteHeader(&h); err != nil {
		t.Fatal(err)
	}
	if h.Typeflag == tar.TypeReg {
		tw.Write([]byte("x"))
	}
	tw.Close()
	return buf.Bytes()
}

// pushWithFilesLayer copies the app manifest of ref with its files layer
// replaced by archive, pushes it and returns its REPO@DIGEST: what a
// tampering publisher holding a trusted key could make.
func (w *world) pushWithFilesLayer(ref string, archive []byte) string {
	t := w.t
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(w.regAddr + "/apps/site")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	_, manJSON, err := func() (ocispec.Descriptor, []byte, error) {
		d, rc, err := repo.FetchReference(ctx, digestOf(ref))
		if err != nil {
			return d, nil, err
		}
		defer rc.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		return d, b.Bytes(), err
	}()
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(manJSON, &man); err != nil {
		t.Fatal(err)
	}
	for i, l := range man.Layers {
		if l.MediaType == registry.MediaTypeFilesLayer {
			man.Layers[i].Digest, man.Layers[i].Size = digest.FromBytes(archive), int64(len(archive))
			if err := repo.Push(ctx, man.Layers[i], bytes.NewReader(archive)); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, _ := json.Marshal(man)
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(out), Size: int64(len(out))}
	if err := repo.Push(ctx, md, bytes.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	return w.regAddr + "/apps/site@" + md.Digest.String()
}
