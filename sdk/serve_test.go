package sdk

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		name       string
		head       string
		method     string
		path, raw  string
		query      string
		header     http.Header
		pathValues map[string]string
		length     int64
	}{
		{
			name:   "plain",
			head:   "GET\n/hello?name=x&y=2\nexample.com\n1.2.3.4:5\n/...\n0\nHUser-Agent: t\nHAccept: a\nHAccept: b\nP...=/hello\n",
			method: "GET", path: "/hello", query: "name=x&y=2",
			header:     http.Header{"User-Agent": {"t"}, "Accept": {"a", "b"}},
			pathValues: map[string]string{"...": "/hello"},
		},
		{
			name:   "escaped path",
			head:   "POST\n/a%2Fb/c%20d?q\nh\nr\n/a/:id\n12\nPid=a%2Fb\n",
			method: "POST", path: "/a/b/c d", raw: "/a%2Fb/c%20d", query: "q",
			header:     http.Header{},
			pathValues: map[string]string{"id": "a%2Fb"},
			length:     12,
		},
		{
			name:   "no headers, no trailing newline after the head",
			head:   "GET\n/\nh\nr\n/\n0\n",
			method: "GET", path: "/",
			header: http.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseHead([]byte(tt.head))
			if err != nil {
				t.Fatal(err)
			}
			got := []any{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.ContentLength, map[string][]string(r.Header)}
			want := []any{tt.method, tt.path, tt.raw, tt.query, tt.length, map[string][]string(tt.header)}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("request (-want +got):\n%s", d)
			}
			for k, v := range tt.pathValues {
				if got := r.PathValue(k); got != v {
					t.Errorf("PathValue(%q) = %q, want %q", k, got, v)
				}
			}
			// Appending to one header's values must not touch another's.
			r.Header.Add("User-Agent", "extra")
			if tt.header["Accept"] != nil {
				if d := cmp.Diff(tt.header["Accept"], r.Header["Accept"]); d != "" {
					t.Errorf("Accept changed by an append to User-Agent:\n%s", d)
				}
			}
		})
	}
}

func TestParseHeadMalformed(t *testing.T) {
	for _, head := range []string{"", "GET\n/\n", "GET\n::bad\nh\nr\n/\n0\n"} {
		if _, err := parseHead([]byte(head)); err == nil {
			t.Errorf("parseHead(%q): no error", head)
		}
	}
}

// The fast path of parseHead must give the URL url.ParseRequestURI gives.
func TestParseHeadURL(t *testing.T) {
	for _, uri := range []string{
		"/", "/hello", "/hello?name=x&y=2", "/x?", "/x??", "/x?a?b", "/a;b=c/~u/-_.$&+,:=@",
		"/a(b)", "/a!b*c'", "/a|b", "/a{b}", "/a%2Fb", "/a%20b?q", "/caf\u00e9", "/a#frag",
		"/a?q=%zz", "*", "http://example.com/x?y", "//double/slash",
	} {
		t.Run(uri, func(t *testing.T) {
			want, err := url.ParseRequestURI(uri)
			if err != nil {
				t.Fatal(err)
			}
			r, err := parseHead([]byte("GET\n" + uri + "\nh\nr\n/...\n0\n"))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, r.URL); d != "" {
				t.Errorf("URL (-url.ParseRequestURI +parseHead):\n%s", d)
			}
			if r.RequestURI != uri {
				t.Errorf("RequestURI = %q, want %q", r.RequestURI, uri)
			}
		})
	}
	for _, uri := range []string{"/a\x01b", "/a?q=\x7f"} {
		if _, err := url.ParseRequestURI(uri); err == nil {
			t.Fatalf("url.ParseRequestURI(%q) accepts it", uri)
		}
		if _, err := parseHead([]byte("GET\n" + uri + "\nh\nr\n/...\n0\n")); err == nil {
			t.Errorf("parseHead accepts %q", uri)
		}
	}
}

func TestParseHeadHeaders(t *testing.T) {
	many := http.Header{}
	var head strings.Builder
	head.WriteString("GET\n/\nh\nr\n/...\n0\n")
	for i := range 20 {
		k := fmt.Sprintf("X-H%d", i)
		for j := range i%3 + 1 {
			v := fmt.Sprintf("v%d.%d", i, j)
			many[k] = append(many[k], v)
			head.WriteString("H" + k + ": " + v + "\n")
		}
	}
	tests := []struct {
		name string
		head string
		want http.Header
	}{
		{"many names and values", head.String(), many},
		{
			"a name coming back after another",
			"GET\n/\nh\nr\n/...\n0\nHA: 1\nHB: 2\nHA: 3\nHC: 4\n",
			http.Header{"A": {"1", "3"}, "B": {"2"}, "C": {"4"}},
		},
		{
			"empty values and no space",
			"GET\n/\nh\nr\n/...\n0\nHA: \nHB:x\nHC\n",
			http.Header{"A": {""}, "B": {"x"}, "C": {""}},
		},
		{
			"parameters between headers, no final newline",
			"GET\n/\nh\nr\n/...\n0\nHA: 1\nPid=7\nHA: 2",
			http.Header{"A": {"1", "2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseHead([]byte(tt.head))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, r.Header); d != "" {
				t.Fatalf("header (-want +got):\n%s", d)
			}
			// Each name's values are its own: appending to one leaves
			// every other as it was.
			for k := range r.Header {
				r.Header[k] = append(r.Header[k], "appended")
				for k2, vs := range r.Header {
					if k2 != k {
						if d := cmp.Diff(tt.want[k2], vs); d != "" {
							t.Errorf("appending to %s changed %s:\n%s", k, k2, d)
						}
					}
				}
				r.Header[k] = r.Header[k][:len(r.Header[k])-1]
			}
		})
	}
}

// Requests are fresh: one kept by a handler does not change with the next.
func TestParseHeadFresh(t *testing.T) {
	buf := []byte("GET\n/one?a=1\nh\nr\n/...\n0\nHA: 1\nP...=/one\n")
	r1, err := parseHead(buf)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "PUT\n/two?b=2\nh\nr\n/...\n0\nHA: 2\nP...=/two\n")
	r2, err := parseHead(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{r1.Method, r1.URL.String(), r1.Header.Get("A"), r1.PathValue("..."), r2.Method, r2.URL.String(), r2.Header.Get("A"), r2.PathValue("...")}
	want := []string{"GET", "/one?a=1", "1", "/one", "PUT", "/two?b=2", "2", "/two"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestParseHeadBody(t *testing.T) {
	r, err := parseHead([]byte("POST\n/\nh\nr\n/...\n5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentLength != 5 || r.Body == http.NoBody {
		t.Fatalf("ContentLength %d, Body %T", r.ContentLength, r.Body)
	}
	// Outside wasip1 there is no host to read from.
	if _, err := io.ReadAll(r.Body); !errors.Is(err, ErrUnsupported) {
		t.Errorf("reading the body: %v, want ErrUnsupported", err)
	}
	if err := r.Body.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	r, err = parseHead([]byte("GET\n/\nh\nr\n/...\n0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Body != http.NoBody {
		t.Errorf("Body of an empty request is %T, want http.NoBody", r.Body)
	}
}

// hostRecorder records what a responseWriter sends to the host.
type hostRecorder struct {
	starts []string // "status\nhead lines"
	body   []byte
	writes int
	refuse int32 // the code resp_write answers (0: accept)
}

func (h *hostRecorder) writer() *responseWriter {
	return newResponseWriter(func(status int32, head []byte) int32 {
		h.starts = append(h.starts, fmt.Sprintf("%d\n%s", status, head))
		return 0
	}, func(b []byte) int32 {
		if h.refuse != 0 {
			return h.refuse
		}
		h.writes++
		h.body = append(h.body, b...)
		return 0
	})
}

func TestHandle(t *testing.T) {
	const head = "GET\n/x\nh\nr\n/...\n0\n"
	big := strings.Repeat("0123456789abcdef", (maxBuffered+100)/16)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		refuse  int32
		code    int32
		starts  []string
		body    string
		writes  int
	}{
		{
			name: "header, status and body in one start and one write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte("hi"))
			},
			starts: []string{"201\nContent-Type: text/plain\n"}, body: "hi", writes: 1,
		},
		{
			name: "nothing written: 200, empty",
			handler: func(w http.ResponseWriter, r *http.Request) {
			},
			starts: []string{"200\n"},
		},
		{
			// As with net/http: the host's net/http sniffs the type, and
			// the handler's header map does not get one.
			name: "no Content-Type set: none sent, none added to the map",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html><body>x</body></html>")
				if ct, ok := w.Header()["Content-Type"]; ok {
					panic(fmt.Sprintf("Content-Type %q appeared in the header map", ct))
				}
			},
			starts: []string{"200\n"}, body: "<html><body>x</body></html>", writes: 1,
		},
		{
			name: "headers changed after the first write are not sent",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("A", "1")
				fmt.Fprint(w, "x")
				w.Header().Set("B", "2")
				w.WriteHeader(http.StatusTeapot) // superfluous
			},
			starts: []string{"200\nA: 1\n"}, body: "x", writes: 1,
		},
		{
			name: "informational status ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusAccepted)
			},
			starts: []string{"202\n"},
		},
		{
			name: "flush sends the head and the body so far",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				io.WriteString(w, "b")
			},
			starts: []string{"200\n"}, body: "ab", writes: 2,
		},
		{
			name: "a large body is streamed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<")
				io.WriteString(w, big)
				w.Write([]byte(big))
				io.WriteString(w, ">")
			},
			starts: []string{"200\n"}, body: "<" + big + big + ">", writes: 4,
		},
		{
			name: "the host refuses the body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "x")
			},
			refuse: -4, code: 4, starts: []string{"200\n"},
		},
		{
			name: "a panic is recovered",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("A", "1")
				io.WriteString(w, "x")
				panic("boom")
			},
			code: 3,
		},
		{
			name: "an invalid status is a panic, as with net/http",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(1000)
			},
			code: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := &hostRecorder{refuse: tt.refuse}
			w := host.writer()
			code := handle(tt.handler, []byte(head), w)
			got := []any{code, host.starts, string(host.body), host.writes}
			want := []any{tt.code, tt.starts, tt.body, tt.writes}
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// The writer is ready for the next request.
			if len(w.header) != 0 || w.status != 0 || w.started || w.failed || len(w.hb) != 0 || len(w.buf) != 0 {
				t.Errorf("writer not reset: %+v", w)
			}
			*host = hostRecorder{}
			if code := handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") }), []byte(head), w); code != 0 || !cmp.Equal(host.starts, []string{"200\n"}) || string(host.body) != "next" {
				t.Errorf("next request: code %d, starts %q, body %q", code, host.starts, host.body)
			}
		})
	}
}

// The common path allocates only what the handler is given: the request
// (with its URL and first header values), the head's string, the header
// map (two allocations).
func TestHandleAllocs(t *testing.T) {
	head := []byte("GET\n/?name=bench\nx\n127.0.0.1:1234\n/...\n0\nHUser-Agent: Go-http-client/1.1\n")
	w := newResponseWriter(func(int32, []byte) int32 { return 0 }, func([]byte) int32 { return 0 })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "hello\n")
	})
	handle(h, head, w)
	if n := testing.AllocsPerRun(100, func() { handle(h, head, w) }); n > 4 {
		t.Errorf("%v allocations per request, want at most 4", n)
	}
}
