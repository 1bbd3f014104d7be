package sdk

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
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
