package release

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
)

// ErrUntrusted means an app's artifact was refused by the spec's trust
// policy (its trust block): no signature on it verifies with a key the
// policy lists or carries a certificate for an identity it lists, or it
// could not be checked. Such an app is left out of the desired state. A
// *TrustError says which artifact and policy. Retrying helps only when the
// underlying signer error is signer.ErrRegistry (the registry could not be
// reached); otherwise sign it with a trusted key or change the policy.
var ErrUntrusted = errors.New("refused by the spec's trust policy")

// TrustError is why the release step refused an app's artifact. It wraps
// ErrUntrusted and the signer's error (signer.ErrUnsigned,
// signer.ErrNoMatchingKey, ...).
type TrustError struct {
	// App is the app's name.
	App string
	// Ref is the artifact that was checked, REPOSITORY/APP@sha256:....
	Ref string
	// Policy describes the spec's trust policy: where it is written and
	// what it trusts ("trust block at ferry.hcl:3: keys keys/ci.pub").
	Policy string
	// Err is the signer's error.
	Err error
}

// Error implements error. It does not repeat the app's name, which callers
// put in front ("app shop: ...").
func (e *TrustError) Error() string {
	return fmt.Sprintf("%v (%s): %s is not signed by a key or identity it trusts: %v", ErrUntrusted, e.Policy, e.Ref, e.Err)
}

// Unwrap returns ErrUntrusted and the signer's error.
func (e *TrustError) Unwrap() []error { return []error{ErrUntrusted, e.Err} }

// trustGate checks released artifacts against a spec's trust policy before
// anything can be planned or applied with them. A nil *trustGate (a spec
// without a trust block) lets everything through: then only the targets'
// own policies decide.
type trustGate struct {
	policy signer.Policy
	desc   string
	err    error // the policy could not be built
	opts   signer.VerifyOptions
}

// newTrustGate returns the gate for cfg's trust block, or nil without one.
func newTrustGate(cfg *spec.Config, opts signer.VerifyOptions) *trustGate {
	if cfg == nil || cfg.Trust == nil {
		return nil
	}
	t := cfg.Trust
	var ids []signer.Identity
	for _, id := range t.Identities {
		ids = append(ids, signer.Identity{Issuer: id.Issuer, Subject: id.Subject, IssuerRegexp: id.IssuerRegexp, SubjectRegexp: id.SubjectRegexp})
	}
	g := &trustGate{opts: opts}
	g.policy, g.err = signer.PolicyFromFiles(t.Keys, ids...)
	g.desc = describeTrust(cfg, ids)
	return g
}

// describeTrust renders the policy for messages: where it is written, its
// keys (relative to the spec directory, with their fingerprints) and its
// identities. Key files hold public keys only; nothing secret is shown.
func describeTrust(cfg *spec.Config, ids []signer.Identity) string {
	t := cfg.Trust
	var b strings.Builder
	b.WriteString("trust block")
	if t.DeclRange.Filename != "" {
		name := t.DeclRange.Filename
		if rel, err := filepath.Rel(absDir(cfg.Dir), name); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
		fmt.Fprintf(&b, " at %s:%d", name, t.DeclRange.Start.Line)
	}
	var parts []string
	if len(t.Keys) > 0 {
		var keys []string
		for _, k := range t.Keys {
			name := k
			if rel, err := filepath.Rel(absDir(cfg.Dir), k); err == nil && !strings.HasPrefix(rel, "..") {
				name = filepath.ToSlash(rel)
			}
			if pk, err := signer.LoadPublicKeyFile(k); err == nil {
				name += " (" + signer.KeyID(pk.Public) + ")"
			}
			keys = append(keys, name)
		}
		parts = append(parts, "keys "+strings.Join(keys, ", "))
	}
	if len(ids) > 0 {
		var s []string
		for _, id := range ids {
			s = append(s, id.String())
		}
		parts = append(parts, "identities "+strings.Join(s, ", "))
	}
	if len(parts) > 0 {
		b.WriteString(": " + strings.Join(parts, "; "))
	}
	return b.String()
}

// check verifies ref under the policy and returns the name of the key (or
// the identity) that signed it.
func (g *trustGate) check(ctx context.Context, app, ref string) (string, error) {
	if g == nil {
		return "", nil
	}
	fail := func(err error) error { return &TrustError{App: app, Ref: ref, Policy: g.desc, Err: err} }
	if g.err != nil {
		return "", fail(g.err)
	}
	res, err := signer.Verify(ctx, ref, g.policy, g.opts)
	if err != nil {
		return "", fail(err)
	}
	if res.Identity != nil {
		return res.Identity.String(), nil
	}
	return res.Key, nil
}
