package outbound

import (
	"errors"
	"net/url"
	"testing"
)

// The table of entries and requests shared with the spec lives in
// targets/host (TestOutboundSpecAndHostAgree); these tests cover what only
// this package has: the error type, canonical rendering and robustness.

func TestParseError(t *testing.T) {
	_, err := Parse("*://api.example.com")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Entry != "*://api.example.com" || e.Reason == "" {
		t.Fatalf("Parse error = %#v", err)
	}
	if _, err := ParseList([]string{"https://ok.example.com", "a", "b"}); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseList = %v; want ErrInvalid", err)
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.example.com":  "https://api.example.com:443",
		"http://*.example.com:*":   "http://*.example.com:*",
		"*://[0:0::1]:8080/":       "*://[::1]:8080",
		"http://127.0.0.1":         "http://127.0.0.1:80",
		"https://*":                "https://*:443",
		"*://*:*":                  "*://*:*",
		"http://[::ffff:10.0.0.1]": "http://10.0.0.1:80",
	} {
		r, err := Parse(in)
		if err != nil || r.String() != want {
			t.Errorf("Parse(%q).String() = %q, %v; want %q", in, r.String(), err, want)
		}
	}
}

func TestZeroRuleAllowsNothing(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1/")
	if (Rule{}).Allows(u) || List(nil).Allows(u) || (List{{Scheme: "*", Host: "*"}}).Allows(nil) {
		t.Error("zero rule, empty list or nil URL allowed a request")
	}
}

// FuzzParse: no entry panics, and a parsed rule's rendering parses back to
// the same rule.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"https://api.example.com", "*://*.example.com:*", "http://[::1]:8080", "http://127.0.0.1:*", "https://*", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v, rendered %q, parsed back %+v, %v", s, r, r.String(), again, err)
		}
	})
}
