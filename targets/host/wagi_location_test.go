package host

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCGILocationMustBeAURL: a guest's Location header that is no URL (found
// by FuzzWAGIResponse: "Location:%" made Go's HTTP client refuse the whole
// response) is refused like any other malformed CGI head, and a valid one
// still redirects.
func TestCGILocationMustBeAURL(t *testing.T) {
	for _, c := range []struct {
		out     string
		wantErr string
		status  int
	}{
		{"Location:%\n\n", `CGI Location "%" is not a URL`, 0},
		{"Location: \n\n", `CGI Location "" is not a URL`, 0},
		{"Status: 301\nLocation: /a%zz\n\n", "is not a URL", 0},
		{"Location: /elsewhere\n\n", "", 302},
		{"Status: 307\nLocation: https://example.invalid/x?y=%20\n\n", "", 307},
	} {
		rec := httptest.NewRecorder()
		status, _, err := writeCGIHead(rec, []byte(c.out))
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%q: err %v, want %q", c.out, err, c.wantErr)
		case c.wantErr == "" && (err != nil || status != c.status):
			t.Errorf("%q: status %d, err %v; want %d", c.out, status, err, c.status)
		}
	}
}

// TestCGIHeaderMustBeValidHTTP: header names that are no token and values
// with control characters (found by FuzzWAGIResponse: "0:\x1f" broke the
// client's read of the whole response) are refused; tabs and UTF-8 pass.
func TestCGIHeaderMustBeValidHTTP(t *testing.T) {
	for _, c := range []struct {
		out     string
		wantErr string
	}{
		{"0:\x1f\nContent-Type: text/plain\n\n", "control character"},
		{"X-A: a\x00b\nContent-Type: text/plain\n\n", "control character"},
		{"X A: b\nContent-Type: text/plain\n\n", "not a token"},
		{"X(A): b\nContent-Type: text/plain\n\n", "not a token"},
		{": b\nContent-Type: text/plain\n\n", "empty name"},
		{"X-A: a\tb\nContent-Type: text/plain\n\n", ""},
		{"X-A: grüße\nContent-Type: text/plain\n\n", ""},
	} {
		rec := httptest.NewRecorder()
		_, _, err := writeCGIHead(rec, []byte(c.out))
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%q: err %v, want %q", c.out, err, c.wantErr)
		case c.wantErr == "" && err != nil:
			t.Errorf("%q: %v", c.out, err)
		}
	}
}
