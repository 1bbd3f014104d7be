package host

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FuzzWAGIResponse feeds arbitrary guest output to writeCGIHead, the parser
// of a WAGI guest's CGI response, and serves what it accepts from a real
// loopback HTTP server exactly as the host does (Content-Length, status,
// body). It must never panic; an accepted response has a status in
// 100..999 and a body that is the tail of the output; the client reads one
// well-formed response whose body is that tail (no response splitting, no
// framing confusion), and every header the guest set reaches it with no CR
// or LF inside.
//
//	go test ./targets/host -run '^$' -fuzz FuzzWAGIResponse -fuzztime 60s
func FuzzWAGIResponse(f *testing.F) {
	for _, s := range []string{
		"Content-Type: text/plain\n\nhello",
		"Content-Type: text/html; charset=utf-8\r\nX-A: 1\r\n\r\n<p>hi</p>",
		"Status: 404 Not Found\nContent-Type: text/plain\n\nnope",
		"Location: /elsewhere\n\n",
		"Status: 301\nLocation: /x\n\n",
		"Content-Length: 3\nTransfer-Encoding: chunked\nContent-Type: a/b\n\nabcdef",
		"Status: 99\n\n",
		"X-Only: 1\n\nbody",
		"no colon\n\n",
		"Content-Type: text/plain",
		"Set-Cookie: a=1\nSet-Cookie: b=2\nContent-Type: text/plain\n\n",
		"Content-Type: text/plain\nX-Split: a\rb\n\nx",
	} {
		f.Add([]byte(s))
	}
	var mu sync.Mutex
	var cur []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		out := cur
		mu.Unlock()
		status, body, err := writeCGIHead(w, out)
		if err != nil {
			http.Error(w, "malformed CGI response", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body)
	}))
	f.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	f.Fuzz(func(t *testing.T, out []byte) {
		rec := httptest.NewRecorder()
		status, body, err := writeCGIHead(rec, out)
		if err != nil {
			return
		}
		if status < 100 || status > 999 {
			t.Fatalf("status %d out of range", status)
		}
		if !bytes.HasSuffix(out, body) {
			t.Fatalf("body %q is not the tail of the output", body)
		}
		for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection"} {
			if rec.Header().Get(k) != "" {
				t.Fatalf("the guest set framing header %s", k)
			}
		}
		if status < 200 || status == 101 {
			return // informational and protocol-switch answers carry no body of their own
		}
		mu.Lock()
		cur = out
		mu.Unlock()
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("the client cannot read the response: %v", err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		if resp.StatusCode != status {
			t.Fatalf("client saw status %d, want %d", resp.StatusCode, status)
		}
		if status != http.StatusNoContent && status != http.StatusNotModified && status >= 200 && !bytes.Equal(got, body) {
			t.Fatalf("client saw body %q, want %q", got, body)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if strings.ContainsAny(k+v, "\r\n") {
					t.Fatalf("header %q: %q carries CR or LF", k, v)
				}
			}
		}
	})
}
