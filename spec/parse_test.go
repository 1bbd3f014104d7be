package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLabelSelector(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical form; "" with err for errors
		err  bool
	}{
		{in: "", want: ""},
		{in: "   ", want: ""},
		{in: "a=b", want: "a=b"},
		{in: "a==b", want: "a=b"},
		{in: "a = b , c != d", want: "a=b,c!=d"},
		{in: "a=", want: "a="},
		{in: "e in (x, y), f notin (z)", want: "e in (x,y),f notin (z)"},
		{in: "g, !h", want: "g,!h"},
		{in: "example.com/ring=canary", want: "example.com/ring=canary"},
		{in: "a=b,", err: true},
		{in: ",a", err: true},
		{in: "a in ()", err: true},
		{in: "a in (x", err: true},
		{in: "a in x", err: true},
		{in: "a b", err: true},
		{in: "!", err: true},
		{in: "a=b=c", err: true},
		{in: "-a=b", err: true},
		{in: "a=-b", err: true},
		{in: "Bad_Prefix.com/a=b", err: true},
		{in: "/a=b", err: true},
		{in: "a > 3", err: true},
		{in: "a=" + strings.Repeat("v", 64), err: true},
		{in: strings.Repeat("k", 64), err: true},
		{in: "a=" + strings.Repeat("v", 63), want: "a=" + strings.Repeat("v", 63)},
	}
	for _, tt := range tests {
		sel, err := ParseLabelSelector(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalidSelector) {
				t.Errorf("ParseLabelSelector(%q) = %v, %v; want ErrInvalidSelector", tt.in, sel, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLabelSelector(%q): %v", tt.in, err)
			continue
		}
		if got := sel.String(); got != tt.want {
			t.Errorf("ParseLabelSelector(%q).String() = %q; want %q", tt.in, got, tt.want)
		}
		again, err := ParseLabelSelector(sel.String())
		if err != nil || !cmp.Equal(again, sel) {
			t.Errorf("canonical form %q does not parse back to the same selector: %v", sel.String(), err)
		}
	}
}

func TestLabelSelectorMatches(t *testing.T) {
	labels := map[string]string{"region": "eu", "tier": "edge", "gpu": "", "example.com/ring": "canary"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"region=eu", true},
		{"region=us", false},
		{"missing=x", false},
		{"region!=us", true},
		{"region!=eu", false},
		{"missing!=x", true},
		{"region in (us,eu)", true},
		{"region in (us,ap)", false},
		{"missing in (x)", false},
		{"region notin (us)", true},
		{"region notin (eu)", false},
		{"missing notin (x)", true},
		{"gpu", true},
		{"missing", false},
		{"!missing", true},
		{"!gpu", false},
		{"gpu=", true},
		{"example.com/ring=canary, region=eu, !retired", true},
		{"example.com/ring=canary, region=us", false},
	}
	for _, tt := range tests {
		sel, err := ParseLabelSelector(tt.sel)
		if err != nil {
			t.Fatalf("ParseLabelSelector(%q): %v", tt.sel, err)
		}
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("%q.Matches(%v) = %v; want %v", tt.sel, labels, got, tt.want)
		}
	}
}

func TestLabelSelectorText(t *testing.T) {
	var s LabelSelector
	if err := s.UnmarshalText([]byte("a in (x,y), !b")); err != nil {
		t.Fatal(err)
	}
	b, err := s.MarshalText()
	if err != nil || string(b) != "a in (x,y),!b" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	if err := s.UnmarshalText([]byte("a in")); !errors.Is(err, ErrInvalidSelector) {
		t.Errorf("UnmarshalText of a bad selector: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "10B", want: 10},
		{in: "512KiB", want: 512 << 10},
		{in: "64MiB", want: 64 << 20},
		{in: "64 MiB", want: 64 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "100kB", want: 100_000},
		{in: "100KB", want: 100_000},
		{in: "100MB", want: 100_000_000},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "", err: true},
		{in: "MiB", err: true},
		{in: "-1", err: true},
		{in: "1.5GiB", err: true},
		{in: "64mib", err: true},
		{in: "64 megabytes", err: true},
		{in: "9223372036854775807", want: 9223372036854775807},
		{in: "9223372036854775808", err: true},
		{in: "8388608TiB", err: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalidSize) {
				t.Errorf("ParseSize(%q) = %d, %v; want ErrInvalidSize", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		in  string
		key string
		err bool
	}{
		{in: "/", key: "/"},
		{in: "/...", key: "/..."},
		{in: "/api/...", key: "/api/..."},
		{in: "/users/:id", key: "/users/:"},
		{in: "/users/:name/posts", key: "/users/:/posts"},
		{in: "/a:b/c%20d", key: "/a:b/c%20d"},
		{in: "", err: true},
		{in: "api", err: true},
		{in: "//", err: true},
		{in: "/a/", err: true},
		{in: "/.../a", err: true},
		{in: "/a/./b", err: true},
		{in: "/:", err: true},
		{in: "/:9", err: true},
		{in: "/a b", err: true},
		{in: "/a?b", err: true},
		{in: "/%zz", err: true},
	}
	for _, tt := range tests {
		r, err := ParseRoute(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalidRoute) {
				t.Errorf("ParseRoute(%q) = %+v, %v; want ErrInvalidRoute", tt.in, r, err)
			}
			continue
		}
		if err != nil || r.key() != tt.key {
			t.Errorf("ParseRoute(%q) key = %q, %v; want %q", tt.in, r.key(), err, tt.key)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "plain"},
		{in: "{{ a }}", want: []string{"a"}},
		{in: "{{a}}-{{ b_2 }}", want: []string{"a", "b_2"}},
		{in: "x{{ a }}y", want: []string{"a"}},
		{in: "{{ a", err: true},
		{in: "a }}", err: true},
		{in: "}} {{ a }}", err: true},
		{in: "{{ }}", err: true},
		{in: "{{ A }}", err: true},
		{in: "{{ a b }}", err: true},
		{in: "{{ a }} }}", err: true},
	}
	for _, tt := range tests {
		got, err := ParseTemplate(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Errorf("ParseTemplate(%q) = %v, %v; want ErrInvalidTemplate", tt.in, got, err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("ParseTemplate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestCheckOutbound(t *testing.T) {
	good := []string{"https://api.example.com", "http://127.0.0.1:8080", "*://*.example.com:*",
		"https://*", "http://[::1]:8080", "https://api.example.com/", "http://127.0.0.1:*", "*://127.0.0.1:8080"}
	bad := []string{"api.example.com", "ftp://x.com", "https://x.com/v1", "https://x.com:0",
		"https://x.com:", "https://u@x.com", "http://[::1", "http://[::1]x", "https://X.com",
		"*://x.com", "https://a.*.com", "https://*.10.0.0.1", "https://x.com:1..9", "http://self", "https://10.0.0.0/8"}
	for _, s := range good {
		if err := checkOutbound(s); err != nil {
			t.Errorf("checkOutbound(%q) = %v; want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := checkOutbound(s); err == nil {
			t.Errorf("checkOutbound(%q) = nil; want an error", s)
		}
	}
}
