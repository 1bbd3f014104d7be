package credential

import (
	"context"
	"fmt"
	"log/slog"
)

// Credential is a registry login. The zero value is anonymous. Its String,
// GoString and LogValue never show the password or tokens, so it may be
// logged or put in an error as is.
type Credential struct {
	// Username and Password are sent with HTTP basic auth or exchanged for a
	// bearer token, as the registry asks.
	Username string
	Password string
	// Token is a registry bearer (access) token sent as is; it wins over
	// Username/Password.
	Token string
	// IdentityToken is an OAuth2 refresh token (Docker's "identitytoken")
	// exchanged for access tokens.
	IdentityToken string
}

// Func returns the login for a registry host ("ghcr.io",
// "127.0.0.1:5000"); the zero Credential means anonymous. An error means
// the lookup itself failed (a credential helper, an unreadable Docker
// config), not that there is no login. Implementations must be safe for
// concurrent use; they are called once per operation and host.
type Func func(ctx context.Context, host string) (Credential, error)

// IsZero reports whether c is anonymous (every field empty).
func (c Credential) IsZero() bool { return c == Credential{} }

// String implements fmt.Stringer without revealing secrets.
func (c Credential) String() string {
	return fmt.Sprintf("Credential{Username:%q Password:%s Token:%s IdentityToken:%s}",
		c.Username, redact(c.Password), redact(c.Token), redact(c.IdentityToken))
}

// GoString implements fmt.GoStringer without revealing secrets.
func (c Credential) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without revealing secrets.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username),
		slog.String("password", redact(c.Password)), slog.String("token", redact(c.Token)),
		slog.String("identity_token", redact(c.IdentityToken)))
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}
