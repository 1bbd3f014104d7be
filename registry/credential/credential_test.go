package credential_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/registry/credential"
)

// TestRedaction: no way of printing or logging a Credential shows a
// secret; the username and which fields are set stay visible.
func TestRedaction(t *testing.T) {
	c := credential.Credential{Username: "bob", Password: "pw-123", Token: "tok-456", IdentityToken: "id-789"}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("login", "cred", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v", &c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Errorf("x: %v", c).Error(), logs.String()} {
		for _, secret := range []string{"pw-123", "tok-456", "id-789"} {
			if strings.Contains(s, secret) {
				t.Errorf("secret %s shown: %s", secret, s)
			}
		}
		if !strings.Contains(s, "bob") || !strings.Contains(s, "[redacted]") {
			t.Errorf("username or redaction mark missing: %s", s)
		}
	}
	if s := fmt.Sprint(credential.Credential{Username: "bob"}); strings.Contains(s, "[redacted]") {
		t.Errorf("empty secrets shown as redacted: %s", s)
	}
}

func TestIsZero(t *testing.T) {
	if !(credential.Credential{}).IsZero() {
		t.Error("zero Credential is not IsZero")
	}
	for _, c := range []credential.Credential{{Username: "u"}, {Password: "p"}, {Token: "t"}, {IdentityToken: "i"}} {
		if c.IsZero() {
			t.Errorf("%v IsZero", c)
		}
	}
}

// A method with Func's signature is a Func: the registry client's lookup
// is handed to the signer as is.
var _ credential.Func = (&lookup{}).CredentialFor

type lookup struct{}

func (*lookup) CredentialFor(context.Context, string) (credential.Credential, error) {
	return credential.Credential{}, nil
}
