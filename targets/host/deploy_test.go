package host

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// versioned returns the goguest app whose /version answers v.
func versioned(g []byte, v string) deploy.App {
	a := app("svc", deploy.ExecutorReactor, g, "/...")
	a.Components[0].Env = map[string]string{"VERSION": v}
	a.Components[0].Health = &deploy.Health{Path: "/healthz"}
	return a
}

func TestSwapInFlightAndRollback(t *testing.T) {
	e := newEnv(t, Options{})
	g := goGuest(t, "targets/host/testdata/goguest")
	e.deploy(t, versioned(g, "v1"), g)

	// A slow request starts on v1 ...
	type res struct {
		code int
		body string
	}
	slow := make(chan res, 1)
	go func() {
		code, body := e.get(t, "/version?sleep_ms=400")
		slow <- res{code, body}
	}()
	time.Sleep(100 * time.Millisecond)
	// ... v2 takes over while it runs ...
	e.deploy(t, versioned(g, "v2"), g)
	if code, body := e.get(t, "/version"); code != 200 || body != "v2" {
		t.Errorf("after deploy: %d %q, want v2", code, body)
	}
	// ... and the slow request finishes on v1.
	if r := <-slow; r.code != 200 || r.body != "v1" {
		t.Errorf("in-flight request: %d %q, want 200 v1", r.code, r.body)
	}

	st, err := e.rt.App("svc")
	if err != nil {
		t.Fatal(err)
	}
	if st.Previous == nil || st.Previous.App.Components[0].Env["VERSION"] != "v1" || st.Current.Status != StatusServing || st.Previous.Status != StatusStandby {
		t.Fatalf("status after swap: %+v", st)
	}
	if err := e.rt.Rollback("svc"); err != nil {
		t.Fatal(err)
	}
	if code, body := e.get(t, "/version"); code != 200 || body != "v1" {
		t.Errorf("after rollback: %d %q, want v1", code, body)
	}
	if err := e.rt.Rollback("svc"); err != nil { // rolling back a rollback
		t.Fatal(err)
	}
	if _, body := e.get(t, "/version"); body != "v2" {
		t.Errorf("after second rollback: %q, want v2", body)
	}

	// An unhealthy v3 never takes traffic.
	bad := versioned(g, "v3")
	bad.Components[0].Env["HEALTHY"] = "no"
	if err := e.rt.Deploy(t.Context(), bad, bundle(g)); !errors.Is(err, ErrHealthCheck) {
		t.Errorf("unhealthy deploy: err = %v, want ErrHealthCheck", err)
	}
	if _, body := e.get(t, "/version"); body != "v2" {
		t.Errorf("after failed deploy: %q, want v2", body)
	}

	if err := e.rt.Delete("svc"); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.get(t, "/version"); code != 404 {
		t.Errorf("after delete: %d, want 404", code)
	}
	for _, err := range []error{e.rt.Delete("svc"), e.rt.Rollback("svc")} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("on a deleted app: err = %v, want ErrNotFound", err)
		}
	}
	if len(e.rt.List()) != 0 {
		t.Errorf("List after delete = %v", e.rt.List())
	}
}

func TestRollbackWithoutPrevious(t *testing.T) {
	e := newEnv(t, Options{})
	h := fixture(t, "hello")
	e.deploy(t, app("one", deploy.ExecutorWAGI, h, "/"), h)
	if err := e.rt.Rollback("one"); !errors.Is(err, ErrNoPrevious) {
		t.Errorf("err = %v, want ErrNoPrevious", err)
	}
	l := e.rt.List()
	if len(l) != 1 || l[0].Name != "one" || l[0].Previous != nil || l[0].Current.Health != HealthUnchecked {
		t.Errorf("List = %+v", l)
	}
}

func TestDeployRefusesBadModules(t *testing.T) {
	e := newEnv(t, Options{})
	hello := fixture(t, "hello")
	garbage := []byte("\x00asm\x01\x00\x00\x00this is not wasm")
	tests := []struct {
		name    string
		app     deploy.App
		b       Bundle
		wantErr error
		wantMsg string
	}{
		{"malformed", app("m", deploy.ExecutorWAGI, garbage, "/"), bundle(garbage), ErrMalformedModule, ""},
		{"unoffered import", app("m", deploy.ExecutorWAGI, fixture(t, "badimport"), "/"), bundle(fixture(t, "badimport")), ErrImportNotOffered, "ferry.launch_missiles"},
		{"missing _start", app("m", deploy.ExecutorWAGI, fixture(t, "noexport"), "/"), bundle(fixture(t, "noexport")), ErrMissingExport, "_start"},
		{"reactor without ferry_handle", app("m", deploy.ExecutorReactor, hello, "/"), bundle(hello), ErrMissingExport, "_initialize"},
		{"missing module", app("m", deploy.ExecutorWAGI, hello, "/"), Bundle{}, ErrMissingModule, ""},
		{"digest mismatch", app("m", deploy.ExecutorWAGI, hello, "/"), Bundle{Modules: map[string][]byte{digestOf(hello): garbage}}, ErrDigestMismatch, ""},
		{"bad name", app("no/slash", deploy.ExecutorWAGI, hello, "/"), bundle(hello), ErrInvalidApp, ""},
		{"bad route", app("m", deploy.ExecutorWAGI, hello, "relative"), bundle(hello), ErrInvalidApp, ""},
		{"bad executor", app("m", "cgi-bin", hello, "/"), bundle(hello), ErrInvalidApp, ""},
		{"memory over limit", func() deploy.App {
			a := app("m", deploy.ExecutorWAGI, fixture(t, "echo"), "/")
			a.Components[0].Limits.MemoryBytes = 64 << 10 // echo needs 4 pages
			return a
		}(), bundle(fixture(t, "echo")), ErrMalformedModule, "over limit"},
		{"data segment out of bounds", app("m", deploy.ExecutorWAGI, fixture(t, "baddata"), "/"), bundle(fixture(t, "baddata")), ErrInstantiate, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.rt.Deploy(context.Background(), tt.app, tt.b)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
	if len(e.rt.List()) != 0 {
		t.Errorf("a refused app was deployed: %+v", e.rt.List())
	}
}

// TestHammerDeploys runs concurrent requests while a new version is
// deployed 100 times; no request may fail. Run it with -race.
func TestHammerDeploys(t *testing.T) {
	e := newEnv(t, Options{})
	h := fixture(t, "hello")
	mk := func(i int) deploy.App {
		a := app("hammer", deploy.ExecutorWAGI, h, "/...")
		a.Components[0].Env = map[string]string{"N": string(rune('a' + i%26))}
		a.Components[0].Health = &deploy.Health{Path: "/healthz"}
		return a
	}
	e.deploy(t, mk(0), h)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var total int
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := e.srv.Client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(e.srv.URL + "/x")
				mu.Lock()
				total++
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					b := readAll(t, resp)
					if resp.StatusCode != 200 || b != "hello\n" {
						failures = append(failures, resp.Status+" "+b)
					}
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return total }
	for i := 1; i <= 100; i++ {
		// Let some requests run against each version.
		for n, deadline := count(), time.Now().Add(5*time.Second); count() < n+4 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Microsecond)
		}
		e.deploy(t, mk(i), h)
		if i%10 == 0 {
			if err := e.rt.Rollback("hammer"); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed, first: %s", len(failures), total, failures[0])
	}
	if total < 400 {
		t.Errorf("only %d requests ran", total)
	}
	t.Logf("%d requests during 100 deploys", total)
	_ = http.StatusOK
}
