package host

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
)

// bystander deploys a healthy app on host "ok.test" and returns a check
// that it still answers.
func bystander(t *testing.T, e *env) func() {
	h := fixture(t, "hello")
	a := app("bystander", deploy.ExecutorWAGI, h, "/...")
	a.Hosts = []string{"ok.test"}
	e.deploy(t, a, h)
	return func() {
		t.Helper()
		if code, body, _ := e.do(t, http.MethodGet, "ok.test", "/", nil); code != 200 || body != "hello\n" {
			t.Errorf("bystander app: %d %q", code, body)
		}
	}
}

func TestBadWAGIGuests(t *testing.T) {
	e := newEnv(t, Options{})
	check := bystander(t, e)
	// Only the loop relies on the deadline; the others get a long one so
	// that a slow machine (or -race) cannot turn their 500 into a 504.
	short, long := deploy.Duration(300*time.Millisecond), deploy.Duration(20*time.Second)
	tests := []struct {
		fixture string
		timeout deploy.Duration
		status  int
		logMsg  string
	}{
		{"loop", short, 504, "guest exceeded its deadline"},
		{"startloop", short, 504, "guest exceeded its deadline"}, // on a safe engine
		{"membomb", long, 500, "guest failed"},
		{"recurse", long, 500, "guest failed"},
		{"trap", long, 500, "guest failed"},
		{"big", long, 500, "response larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			w := fixture(t, tt.fixture)
			a := app(tt.fixture, deploy.ExecutorWAGI, w, "/...")
			a.Hosts = []string{tt.fixture + ".test"}
			a.Components[0].Limits = deploy.Limits{Timeout: tt.timeout, MemoryBytes: 8 << 20}
			e.deploy(t, a, w)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			done := make(chan struct{})
			go func() { // the other app keeps serving meanwhile
				defer close(done)
				check()
			}()
			code, _, _ := e.do(t, http.MethodGet, tt.fixture+".test", "/", nil)
			<-done
			if code != tt.status {
				t.Errorf("status %d, want %d", code, tt.status)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// The response is capped at 16 MiB, so far less than the 100 MiB
			// the guest writes is ever held. (Deep recursion is bounded by
			// wazero's own stack ceiling, not by the host.)
			if grew := after.TotalAlloc - before.TotalAlloc; tt.fixture != "recurse" && grew > 64<<20 {
				t.Errorf("the host allocated %d MiB for one request", grew>>20)
			}
			want := fmt.Sprintf("msg=\"request failed: %s", tt.logMsg)
			if logs := e.logs.String(); !strings.Contains(logs, want) || !strings.Contains(logs, "app="+tt.fixture+" component=main") {
				t.Errorf("no log line %q naming app and component", want)
			}
			check()
			code, _, _ = e.do(t, http.MethodGet, tt.fixture+".test", "/", nil)
			if code != tt.status { // and it fails the same way again
				t.Errorf("second request: status %d, want %d", code, tt.status)
			}
		})
	}
}

func TestBadReactorGuest(t *testing.T) {
	e := newEnv(t, Options{})
	check := bystander(t, e)
	g := goGuest(t, "targets/host/testdata/goguest")
	// Two deployments of the guest: a short deadline for the spinning
	// handler, a long one for the rest (so that -race cannot make them 504:
	// under -race /grow alone takes about 20 s on a 2-core machine).
	for _, d := range []struct {
		host    string
		timeout time.Duration
	}{{"bad.test", 90 * time.Second}, {"spin.test", 500 * time.Millisecond}} {
		a := app(strings.TrimSuffix(d.host, ".test"), deploy.ExecutorReactor, g, "/...")
		a.Hosts = []string{d.host}
		a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(d.timeout), MemoryBytes: 64 << 20}
		e.deploy(t, a, g)
	}
	tests := []struct {
		host, path string
		status     int
	}{
		{"bad.test", "/panic", 500},
		{"bad.test", "/exit", 500},
		{"spin.test", "/spin", 504},
		{"bad.test", "/grow", 500},
		{"bad.test", "/big", 500},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if code, _, _ := e.do(t, http.MethodGet, tt.host, tt.path, nil); code != tt.status {
				t.Errorf("status %d, want %d", code, tt.status)
			}
			// A fresh or recycled instance serves the next request.
			if code, body, _ := e.do(t, http.MethodGet, tt.host, "/", nil); code != 200 || body != "goguest" {
				t.Errorf("next request: %d %q", code, body)
			}
			check()
		})
	}
}

// TestSlowClient: a client that never finishes its body, and one that never
// reads its response, each fail alone.
func TestSlowClient(t *testing.T) {
	e := newEnv(t, Options{})
	check := bystander(t, e)
	raw := fixture(t, "raw")
	a := app("raw", deploy.ExecutorWAGI, raw, "/...")
	a.Components[0].Limits = deploy.Limits{Timeout: deploy.Duration(300 * time.Millisecond), MaxResponseBytes: 32 << 20}
	e.deploy(t, a, raw)
	addr := strings.TrimPrefix(e.srv.URL, "http://")

	// Trickling body: announces 1000 bytes, sends 10.
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	fmt.Fprintf(c1, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	check()
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c1), nil)
	if err != nil {
		t.Fatalf("trickling client: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("trickling client: status %d, want 408", resp.StatusCode)
	}

	// Non-reading client: asks for a 10 MiB response and never reads it.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	body := "Content-Type: text/plain\n\n" + strings.Repeat("y", 10<<20)
	fmt.Fprintf(c2, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	for range 5 {
		check()
		time.Sleep(100 * time.Millisecond)
	}
	// The host gives up on it: the connection ends before 10 MiB arrive.
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	n := 0
	buf := make([]byte, 64<<10)
	for {
		k, err := c2.Read(buf)
		n += k
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after the write deadline (%d bytes read)", n)
			}
			break
		}
	}
	if n >= 10<<20 {
		t.Errorf("non-reading client got the whole response (%d bytes)", n)
	}
	check()
}
