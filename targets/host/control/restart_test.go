package control_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// TestRestartWithoutRegistry: a host restarted on its state directory with
// the registry gone serves every app again (signatures re-verified
// locally), keeps the previous versions for rollback and the secrets; a
// corrupt module blob fails that app alone; a changed trust policy refuses
// what it no longer trusts.
func TestRestartWithoutRegistry(t *testing.T) {
	trusted, other := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()

	a1 := w.push("apps/a", helloApp("a"), helloWasm(t))
	a2 := w.push("apps/a", helloApp("a"), variant(t, "Hallo"))
	bApp := helloApp("b")
	bApp.Variables = map[string]deploy.Variable{"api_key": {Secret: true}}
	bApp.Components[0].Variables = map[string]string{"key": "{{ api_key }}"}
	b1 := w.push("apps/b", bApp, variant(t, "Hullo"))
	for _, r := range []string{a1, a2, b1} {
		w.sign(r, trusted)
	}
	for _, p := range []struct{ name, ref string }{{"a", a1}, {"a", a2}, {"b", b1}} {
		if _, err := w.client.PutApp(ctx, p.name, api.PutRequest{Ref: p.ref, Secrets: map[string]string{"api_key": "k-" + p.name}}); err != nil {
			t.Fatalf("put %s: %v", p.ref, err)
		}
	}
	w.wantServes("a.test", "Hallo")
	w.wantServes("b.test", "Hullo")

	// Secrets are in 0600 files, never in the record.
	matches, _ := filepath.Glob(filepath.Join(w.stateDir, "apps", "*", "secrets-*.json"))
	if len(matches) != 3 { // a: current and previous; b: current
		t.Fatalf("secrets files: %v", matches)
	}
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", m, fi.Mode(), err)
		}
	}
	rec, _ := os.ReadFile(filepath.Join(w.stateDir, "apps", "b", "app.json"))
	if strings.Contains(string(rec), "k-b") {
		t.Fatal("secret value in app.json")
	}

	w.stop()
	if err := w.reg.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("all apps back", func(t *testing.T) {
		// A directory left by a first save that never finished is ignored.
		if err := os.MkdirAll(filepath.Join(w.stateDir, "apps", "ghost"), 0o700); err != nil {
			t.Fatal(err)
		}
		rep := w.start()
		if len(rep.Failed) != 0 || fmt.Sprint(rep.Serving) != "[a b]" {
			t.Fatalf("restore: %+v", rep)
		}
		w.wantServes("a.test", "Hallo")
		w.wantServes("b.test", "Hullo")
		ai, err := w.client.App(ctx, "a")
		if err != nil || ai.Digest != digestOf(a2) || ai.Previous != digestOf(a1) || ai.VerifiedBy != "key0" {
			t.Fatalf("a after restart: %+v %v", ai, err)
		}
		if err := w.client.RollBack(ctx, "a"); err != nil {
			t.Fatalf("rollback after restart: %v", err)
		}
		w.wantServes("a.test", "Hello")
		w.stop()
	})

	t.Run("rollback survives restart", func(t *testing.T) {
		w.start()
		w.wantServes("a.test", "Hello")
		ai, _ := w.client.App(ctx, "a")
		if ai.Digest != digestOf(a1) || ai.Previous != digestOf(a2) {
			t.Fatalf("a: %+v", ai)
		}
		w.stop()
	})

	t.Run("corrupt module fails one app", func(t *testing.T) {
		blob := filepath.Join(w.stateDir, "blobs", "sha256", strings.TrimPrefix(sha(variant(t, "Hullo")), "sha256:"))
		if err := os.WriteFile(blob, []byte("\x00asm\x01\x00\x00\x00tampered"), 0o644); err != nil {
			t.Fatal(err)
		}
		rep := w.start()
		if fmt.Sprint(rep.Serving) != "[a]" || !errors.Is(rep.Failed["b"], state.ErrCorrupt) {
			t.Fatalf("restore: %+v", rep)
		}
		w.wantServes("a.test", "Hello")
		if code, _ := w.get("b.test", "/"); code != 404 {
			t.Fatalf("b answers %d", code)
		}
		got, err := w.client.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[1].Name != "b" || got[1].Status != api.StatusFailed || got[1].Healthy ||
			!strings.Contains(got[1].Message, "corrupt") || got[1].Digest != digestOf(b1) {
			t.Fatalf("Observe: %+v", got)
		}
		if !strings.Contains(w.logs.String(), "app not restored") {
			t.Error("failure not logged")
		}
		// Deleting the failed app clears it.
		if err := w.client.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		w.stop()
	})

	t.Run("untrusted after policy change", func(t *testing.T) {
		w.policy = signer.Policy{Keys: []signer.Key{other.pub}}
		rep := w.start()
		if len(rep.Serving) != 0 || !errors.Is(rep.Failed["a"], signer.ErrNoMatchingKey) {
			t.Fatalf("restore under another key: %+v", rep)
		}
		if code, _ := w.get("a.test", "/"); code != 404 {
			t.Fatalf("untrusted app answers %d", code)
		}
		w.stop()
	})
}

// TestConcurrentPuts hammers two apps with PUTs and rollbacks from many
// goroutines: PUTs of one app are serialised, so the runtime, the listing
// and the state directory agree at the end. Run with -race.
func TestConcurrentPuts(t *testing.T) {
	trusted, _ := testKeys(t)
	w := newWorld(t, signer.Policy{Keys: []signer.Key{trusted.pub}})
	ctx := context.Background()
	refs := map[string][]string{}
	greetings := map[string]string{}
	for i, name := range []string{"x", "y"} {
		for j, g := range []string{"Hello", "Hallo", "Hullo"} {
			if i == 1 {
				g = strings.ToUpper(g[:2]) + g[2:]
			}
			ref := w.push("apps/"+name, helloApp(name), variant(t, g))
			w.sign(ref, trusted)
			refs[name] = append(refs[name], ref)
			greetings[digestOf(ref)] = g
			_ = j
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for g := range 6 {
		wg.Go(func() {
			for i := range 4 {
				name := []string{"x", "y"}[(g+i)%2]
				ref := refs[name][(g*7+i)%3]
				var err error
				if i == 3 && g%3 == 0 {
					err = w.client.RollBack(ctx, name)
					if errors.Is(err, driver.ErrNoPrevious) || errors.Is(err, driver.ErrNotFound) {
						err = nil
					}
				} else {
					_, err = w.client.Put(ctx, targets.DesiredApp{Name: name, Ref: ref, Digest: digestOf(ref)})
				}
				if err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st, err := state.Open(w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x", "y"} {
		ai, err := w.client.App(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := st.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		prev := ""
		if rec.Previous != nil {
			prev = rec.Previous.Digest
		}
		if rec.Current.Digest != ai.Digest || prev != ai.Previous {
			t.Errorf("%s: listing says %s (prev %s), state dir %s (prev %s)", name, ai.Digest, ai.Previous, rec.Current.Digest, prev)
		}
		w.wantServes(name+".test", greetings[ai.Digest]+" from WAT")
	}
}
