package signer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ferry-wasm/ferry/registry/credential"
)

// TestKeychainTakesTheSharedCredential: the registry's login type reaches
// go-containerregistry field by field (a token as the bearer token, an
// identity token for the refresh exchange), the zero one as anonymous, and
// a lookup error without any secret.
func TestKeychainTakesTheSharedCredential(t *testing.T) {
	tests := []struct {
		name string
		cred credential.Credential
		want authn.AuthConfig
	}{
		{"anonymous", credential.Credential{}, authn.AuthConfig{}},
		{"password", credential.Credential{Username: "u", Password: "p"}, authn.AuthConfig{Username: "u", Password: "p"}},
		{"token", credential.Credential{Token: "t"}, authn.AuthConfig{RegistryToken: "t"}},
		{"identity token", credential.Credential{Username: "<token>", IdentityToken: "i"}, authn.AuthConfig{Username: "<token>", IdentityToken: "i"}},
	}
	reg, err := name.NewRegistry("127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked string
			k := RegistryOptions{Credentials: func(_ context.Context, host string) (credential.Credential, error) {
				asked = host
				return tt.cred, nil
			}}.keychain(context.Background())
			a, err := k.Resolve(reg)
			if err != nil {
				t.Fatal(err)
			}
			if asked != "127.0.0.1:5000" {
				t.Errorf("lookup asked for %q, want 127.0.0.1:5000", asked)
			}
			if tt.cred.IsZero() && a != authn.Anonymous {
				t.Errorf("zero credential resolved to %v, want anonymous", a)
			}
			got, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("auth config (-want +got):\n%s", diff)
			}
		})
	}
	boom := errors.New("helper failed")
	k := RegistryOptions{Credentials: func(context.Context, string) (credential.Credential, error) {
		return credential.Credential{Password: "pw-secret"}, boom
	}}.keychain(context.Background())
	if _, err := k.Resolve(reg); !errors.Is(err, boom) || strings.Contains(err.Error(), "pw-secret") {
		t.Errorf("Resolve error %v; want the lookup's error, no secret", err)
	}
}
