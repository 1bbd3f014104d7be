package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// body is what the upstream serves: 200 KiB with a marker in the middle.
var body = bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)

func init() { copy(body[100<<10:], "MARKER-IN-THE-BLOB") }

func start(t *testing.T) (*Proxy, func() (string, error)) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "204800")
		w.Write(body)
	}))
	t.Cleanup(up.Close)
	p, err := New(strings.TrimPrefix(up.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	get := func() (string, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + p.Addr() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	return p, get
}

func TestProxyFaults(t *testing.T) {
	p, get := start(t)
	if b, err := get(); err != nil || b != string(body) {
		t.Fatalf("no fault: %d bytes, %v", len(b), err)
	}

	// Corrupt: same length, changed bytes, once.
	p.Set(Fault{Match: []byte("MARKER-IN-THE-BLOB"), Action: Corrupt, Replace: []byte("EVILER-IN-THE-BLOB"), Times: 1})
	b, err := get()
	if err != nil || len(b) != len(body) || !strings.Contains(b, "EVILER-IN-THE-BLOB") || strings.Contains(b, "MARKER") {
		t.Fatalf("corrupt: %d bytes, %v", len(b), err)
	}
	if b, err := get(); err != nil || b != string(body) || p.Fired()[0] != 1 {
		t.Fatalf("after Times: %d bytes, %v, fired %v", len(b), err, p.Fired())
	}

	// Truncate and Reset cut the body mid-way.
	for _, a := range []Action{Truncate, Reset} {
		p.Set(Fault{Match: []byte("MARKER-IN-THE-BLOB"), Action: a, Times: 1})
		b, err := get()
		if err == nil || len(b) >= 100<<10+18 {
			t.Fatalf("action %d: %d bytes, err %v; want an error before the marker's end", a, len(b), err)
		}
		if a == Truncate && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncate: %v, want unexpected EOF", err)
		}
		if a == Reset && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("reset: %v, want connection reset", err)
		}
	}
	p.Set()

	// Down refuses; Up serves again on the same address.
	p.Down()
	if _, err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("down: %v, want connection refused", err)
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	if b, err := get(); err != nil || b != string(body) {
		t.Fatalf("up again: %d bytes, %v", len(b), err)
	}

	// Slow: 200 KiB at 1 MiB/s takes at least about 0.2 s.
	p.Set(Fault{BytesPerSecond: 1 << 20})
	start := time.Now()
	if b, err := get(); err != nil || b != string(body) {
		t.Fatalf("slow: %d bytes, %v", len(b), err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("200 KiB at 1 MiB/s took %v", d)
	}
	if err := p.Set(Fault{Action: Corrupt, Match: []byte("ab"), Replace: []byte("c")}); err == nil {
		t.Error("Corrupt with a shorter Replace was accepted")
	}
}
