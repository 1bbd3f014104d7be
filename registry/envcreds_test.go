package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/registry"
)

// TestEnvCredentials: the environment's login is keyed by the one host
// FERRY_REGISTRY_HOST names; a login without a usable host is an error
// that does not quote the password.
func TestEnvCredentials(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    map[string]registry.Credential
		wantErr bool
	}{
		{"nothing set", nil, nil, false},
		{"host alone", map[string]string{registry.EnvHost: "127.0.0.1:5000"}, nil, false},
		{"login with host", map[string]string{registry.EnvUsername: "u", registry.EnvPassword: "p-secret", registry.EnvHost: " 127.0.0.1:5000 "},
			map[string]registry.Credential{"127.0.0.1:5000": {Username: "u", Password: "p-secret"}}, false},
		{"token with host", map[string]string{registry.EnvToken: "t-secret", registry.EnvHost: "ghcr.io"},
			map[string]registry.Credential{"ghcr.io": {Token: "t-secret"}}, false},
		{"login without host", map[string]string{registry.EnvUsername: "u", registry.EnvPassword: "p-secret"}, nil, true},
		{"login for every host", map[string]string{registry.EnvPassword: "p-secret", registry.EnvHost: "*"}, nil, true},
		{"host with a path", map[string]string{registry.EnvPassword: "p-secret", registry.EnvHost: "ghcr.io/org"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.EnvCredentials(func(k string) string { return tt.env[k] })
			if tt.wantErr {
				if !errors.Is(err, registry.ErrCredentialHost) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("err = %v; want ErrCredentialHost without the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Fatalf("credentials (-want +got):\n%s", d)
			}
		})
	}
}
