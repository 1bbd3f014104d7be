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
