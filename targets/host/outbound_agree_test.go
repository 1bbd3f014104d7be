package host

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/spec"
)

// outboundCases is the one table of allowed_outbound_hosts entries: whether
// an entry is valid, and for valid ones which request URLs it allows and
// which it denies. TestOutboundSpecAndHostAgree runs every case through
// spec loading (LANGUAGE.md) and the host's matcher (ABI.md); they must
// agree with the table and so with each other.
var outboundCases = []struct {
	entry        string
	valid        bool
	allow, deny  []string
	specDiagHint string // for invalid entries: a phrase of the diagnostic's detail
}{
	{entry: "https://api.example.com", valid: true,
		allow: []string{"https://api.example.com/x", "https://api.example.com:443/", "https://API.Example.com/", "https://api.example.com./"},
		deny:  []string{"http://api.example.com/", "https://api.example.com:8443/", "https://x.api.example.com/", "https://api.example.com.evil.test/", "https://example.com/"}},
	{entry: "https://api.example.com/", valid: true,
		allow: []string{"https://api.example.com/v1"}, deny: []string{"http://api.example.com/"}},
	{entry: "http://127.0.0.1:8080", valid: true,
		allow: []string{"http://127.0.0.1:8080/a?b=c"},
		deny:  []string{"http://127.0.0.1:8081/", "https://127.0.0.1:8080/", "http://localhost:8080/", "http://127.0.0.2:8080/"}},
	{entry: "http://127.0.0.1:*", valid: true,
		allow: []string{"http://127.0.0.1:1/", "http://127.0.0.1:65535/", "http://127.0.0.1/"},
		deny:  []string{"https://127.0.0.1:443/", "http://127.0.0.2:80/", "http://localhost:8080/"}},
	{entry: "*://127.0.0.1:8080", valid: true,
		allow: []string{"http://127.0.0.1:8080/", "https://127.0.0.1:8080/"},
		deny:  []string{"http://127.0.0.1:8081/", "http://127.0.0.1/"}},
	{entry: "*://*.example.com:*", valid: true,
		allow: []string{"http://a.example.com:1/", "https://a.b.example.com/"},
		deny:  []string{"https://example.com/", "https://aexample.com/", "https://example.com.evil.test/", "http://127.0.0.1/"}},
	{entry: "https://*.example.com", valid: true,
		allow: []string{"https://api.example.com/", "https://a.b.example.com/x"},
		deny:  []string{"http://api.example.com/", "https://api.example.com:8443/", "https://example.com/", "https://evil%2e.example.com/"}},
	{entry: "http://*.localhost:*", valid: true,
		allow: []string{"http://app.localhost:1234/"},
		deny:  []string{"http://localhost:1234/", "https://app.localhost:1234/"}},
	{entry: "https://*", valid: true,
		allow: []string{"https://anything.test/", "https://127.0.0.1/", "https://[::1]/"},
		deny:  []string{"http://anything.test/", "https://anything.test:8443/"}},
	{entry: "*://*:*", valid: true,
		allow: []string{"http://anything.test:1/", "https://10.1.2.3:8443/"},
		deny:  []string{"ftp://anything.test/"}},
	{entry: "http://[::1]:8080", valid: true,
		allow: []string{"http://[::1]:8080/", "http://[0:0::1]:8080/"},
		deny:  []string{"http://127.0.0.1:8080/", "http://[::1]:8081/"}},

	{entry: "api.example.com", specDiagHint: "no scheme"},
	{entry: "ftp://files.example.com", specDiagHint: "scheme"},
	{entry: "https://api.example.com/v1", specDiagHint: "path"},
	{entry: "https://api.example.com:99999", specDiagHint: "port"},
	{entry: "https://api.example.com:0", specDiagHint: "port"},
	{entry: "https://api.example.com:", specDiagHint: "port"},
	{entry: "https://api.example.com:8000..9000", specDiagHint: "port ranges"},
	{entry: "https://user@api.example.com", specDiagHint: "user"},
	{entry: "http://[::1", specDiagHint: "IPv6"},
	{entry: "http://::1:8080", specDiagHint: "brackets"},
	{entry: "https://API.example.com", specDiagHint: "lowercase"},
	{entry: "*://api.example.com", specDiagHint: "no default port"},
	{entry: "https://api.*.com", specDiagHint: "wildcard"},
	{entry: "https://*.127.0.0.1", specDiagHint: "host name"},
	{entry: "https://10.0.0.0/8", specDiagHint: "path"},
	{entry: "http://self", specDiagHint: "self"},
}

// TestOutboundSpecAndHostAgree: every entry of outboundCases validates in
// the spec exactly when ferry-host accepts it at deploy, and the host
// allows and denies what the table says. A spec app is loaded per entry,
// so the check covers the real loading path (HCL, diagnostics, DeployApp).
func TestOutboundSpecAndHostAgree(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tt := range outboundCases {
		t.Run(strconv.Itoa(i)+"_"+strings.NewReplacer("/", "_", ":", "_", "*", "any").Replace(tt.entry), func(t *testing.T) {
			src := fmt.Sprintf("app \"a\" {\n  component \"web\" {\n    wasm = \"./app.wasm\"\n    allowed_outbound_hosts = [%q]\n  }\n}\n", tt.entry)
			if err := os.WriteFile(filepath.Join(dir, "spec.hcl"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, diags := spec.Load(dir, spec.LoadOptions{})
			specValid := !diags.HasErrors()
			if !specValid {
				if len(diags) != 1 || diags[0].Summary != "Invalid outbound host" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 4 {
					t.Errorf("spec diagnostics = %v; want one \"Invalid outbound host\" on line 4", diags)
				} else if !strings.Contains(diags[0].Detail, tt.specDiagHint) {
					t.Errorf("spec detail %q does not say %q", diags[0].Detail, tt.specDiagHint)
				}
			}
			hosts := []string{tt.entry}
			if specValid {
				a, ok := cfg.DeployApp("a")
				if !ok {
					t.Fatal("DeployApp(a) not found")
				}
				hosts = a.Components[0].AllowedOutboundHosts
			}
			allowed, herr := parseAllowed(hosts)
			hostValid := herr == nil
			if specValid != tt.valid || hostValid != tt.valid {
				t.Fatalf("%q: spec valid %v (%v), host valid %v (%v); want %v for both", tt.entry, specValid, diags, hostValid, herr, tt.valid)
			}
			for _, raw := range tt.allow {
				if u, err := url.Parse(raw); err != nil || !allowed.allows(u) {
					t.Errorf("%q does not allow %s (%v)", tt.entry, raw, err)
				}
			}
			for _, raw := range tt.deny {
				// A URL the host cannot parse is refused before any rule is
				// looked at (abi.ErrInvalid), so it counts as denied.
				if u, err := url.Parse(raw); err == nil && allowed.allows(u) {
					t.Errorf("%q allows %s", tt.entry, raw)
				}
			}
		})
	}
}

// TestOutboundWildcards: a guest's request to a host that an allowed
// wildcard entry covers reaches the upstream through the real runtime and
// the guest SDK's client; the same request under an entry that does not
// cover it is denied. Names under .localhost are resolved by the test's
// dialer to 127.0.0.1 (nothing here leaves loopback).
func TestOutboundWildcards(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "from upstream for %s", r.Host)
	}))
	defer upstream.Close()
	_, port, _ := net.SplitHostPort(upstream.Listener.Addr().String())
	var d net.Dialer
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			h, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if strings.HasSuffix(h, ".localhost") {
				h = "127.0.0.1"
			}
			if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("test dialer: %s is not loopback", addr)
			}
			return d.DialContext(ctx, network, net.JoinHostPort(h, p))
		},
	}}
	e := newEnv(t, Options{OutboundClient: client})
	g := goGuest(t, "targets/host/testdata/goguest")
	for name, allowed := range map[string]string{
		"sub":   "http://*.localhost:*",
		"port":  "http://127.0.0.1:*",
		"any":   "*://*:" + port,
		"https": "https://*.localhost:*",
	} {
		a := app(name, deploy.ExecutorReactor, g, "/...")
		a.Hosts = []string{name + ".test"}
		a.Components[0].AllowedOutboundHosts = []string{allowed}
		e.deploy(t, a, g)
	}
	sub := "http://api.localhost:" + port + "/x"
	loop := "http://127.0.0.1:" + port + "/x"
	for _, tt := range []struct {
		app, url string
		ok       bool
	}{
		{"sub", sub, true},
		{"sub", "http://a.b.localhost:" + port + "/x", true},
		{"sub", loop, false},
		{"port", loop, true},
		{"port", sub, false},
		{"any", sub, true},
		{"any", loop, true},
		{"https", sub, false},
	} {
		code, body, _ := e.do(t, http.MethodGet, tt.app+".test", "/fetch?url="+url.QueryEscape(tt.url), nil)
		host := strings.TrimSuffix(strings.TrimPrefix(tt.url, "http://"), "/x")
		if tt.ok && (code != 200 || body != "200 from upstream for "+host) {
			t.Errorf("%s fetching %s: %d %q; want 200 from upstream", tt.app, tt.url, code, body)
		}
		if !tt.ok && (code != 502 || !strings.Contains(body, "denied")) {
			t.Errorf("%s fetching %s: %d %q; want denied", tt.app, tt.url, code, body)
		}
	}
}
