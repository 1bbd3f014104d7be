package spec

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCredentials(t *testing.T) {
	src := `credential "prod-hosts" {
  endpoints        = ["https://h1.example.com:8443", "https://h2.example.com:8443/"]
  token_file       = "prod.token"
  ca_file          = "/etc/ferry/ca.pem"
  client_cert_file = "~/client.pem"
  client_key_file  = "~/client.key"
}

credential "local" {
  endpoints = ["http://127.0.0.1:*"]
  token_env = "FERRY_HOST_TOKEN"
}
`
	file := filepath.Join("/etc/ferry", "credentials.hcl")
	creds, diags := ParseCredentials(file, []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := Credentials{
		"prod-hosts": {Name: "prod-hosts", Endpoints: []string{"https://h1.example.com:8443", "https://h2.example.com:8443/"},
			TokenFile: "/etc/ferry/prod.token", CAFile: "/etc/ferry/ca.pem", ClientCertFile: "~/client.pem", ClientKeyFile: "~/client.key"},
		"local": {Name: "local", Endpoints: []string{"http://127.0.0.1:*"}, TokenEnv: "FERRY_HOST_TOKEN"},
	}
	if d := cmp.Diff(want, creds, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".DeclRange" }, cmp.Ignore())); d != "" {
		t.Fatalf("credentials (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		cred, endpoint string
		want           bool
	}{
		{"prod-hosts", "https://h1.example.com:8443", true},
		{"prod-hosts", "https://h1.example.com:8443/", true},
		{"prod-hosts", "https://h2.example.com:8443", true},
		{"prod-hosts", "https://h3.example.com:8443", false},
		{"prod-hosts", "http://h1.example.com:8443", false},
		{"prod-hosts", "https://h1.example.com:8443/x", false},
		{"local", "http://127.0.0.1:8081", true},
		{"local", "http://127.0.0.1:8081/evil", false},
		{"local", "http://127.0.0.2:8081", false},
		{"local", "http://127.0.0.1.attacker.example:8081", false},
	} {
		if got := creds[tc.cred].Allows(tc.endpoint); got != tc.want {
			t.Errorf("%s.Allows(%q) = %v, want %v", tc.cred, tc.endpoint, got, tc.want)
		}
	}
	if (*Credential)(nil).Allows("http://127.0.0.1:1") {
		t.Error("a nil credential allows an endpoint")
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no endpoints attribute", `credential "a" { token_env = "X" }`, "Missing required argument"},
		{"empty endpoints", `credential "a" { endpoints = [] }`, "Missing endpoints"},
		{"bad endpoint", `credential "a" { endpoints = ["ftp://x"] }`, "Invalid endpoint"},
		{"bad pattern", `credential "a" { endpoints = ["http://[x"] }`, "Invalid endpoint pattern"},
		{"both tokens", "credential \"a\" {\n endpoints = [\"http://x:1\"]\n token_env = \"X\"\n token_file = \"f\"\n}", "Conflicting arguments"},
		{"cert without key", "credential \"a\" {\n endpoints = [\"http://x:1\"]\n client_cert_file = \"c\"\n}", "Incomplete client certificate"},
		{"bad env name", "credential \"a\" {\n endpoints = [\"http://x:1\"]\n token_env = \"not a name\"\n}", "Invalid environment variable name"},
		{"duplicate", "credential \"a\" {\n endpoints = [\"http://x:1\"]\n}\ncredential \"a\" {\n endpoints = [\"http://x:1\"]\n}", "Duplicate credential"},
		{"bad name", "credential \"A B\" {\n endpoints = [\"http://x:1\"]\n}", "Invalid name"},
		{"inline token", "credential \"a\" {\n endpoints = [\"http://x:1\"]\n token = \"s3cret\"\n}", "Unsupported argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := ParseCredentials("creds.hcl", []byte(tc.src))
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("diagnostics = %v, want %q", diags, tc.want)
			}
		})
	}
	if _, diags := LoadCredentials(filepath.Join(t.TempDir(), "missing.hcl")); !diags.HasErrors() {
		t.Fatal("a missing credentials file loads")
	}
}
