package control

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/state"
)

// secretHashPrefix starts every secret hash; it names the scheme.
const secretHashPrefix = "hmac-sha256:"

// secretHashKey derives the key of the secret hashes (AppInfo.SecretHashes)
// from the control API's bearer token: the host and every client holding
// the token compute the same hashes, and nobody without it can test a guess
// of a value against a hash (in a plan file, a log, an AppInfo). A new token
// changes every hash; the next plan then updates each app with secrets once,
// with the same values.
func secretHashKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("ferry-host secret hashes v1"))
	return m.Sum(nil)
}

// secretHashes returns, for each secret, HMAC-SHA256(key, app NUL name NUL
// value) in hex after secretHashPrefix. The app and variable names are in
// the message, so equal values of different variables or apps hash apart.
// The result is never nil.
func secretHashes(key []byte, app string, secrets map[string]string) map[string]string {
	out := make(map[string]string, len(secrets))
	for name, v := range secrets {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(app))
		m.Write([]byte{0})
		m.Write([]byte(name))
		m.Write([]byte{0})
		m.Write([]byte(v))
		out[name] = secretHashPrefix + hex.EncodeToString(m.Sum(nil))
	}
	return out
}

var (
	_ targets.SecretHasher = (*Client)(nil)
	_ targets.SecretHasher = (*Group)(nil)
)

// SecretHashes implements targets.SecretHasher: the hashes the host reports
// in AppInfo.SecretHashes for app when it runs with secrets.
func (c *Client) SecretHashes(app string, secrets map[string]string) map[string]string {
	return secretHashes(secretHashKey(c.token), app, secrets)
}

// SecretHashes implements targets.SecretHasher for the merged view of
// Observe: each variable's hash is every host's hash (each keyed by its own
// token), joined with commas in endpoint order.
func (g *Group) SecretHashes(app string, secrets map[string]string) map[string]string {
	per := make([]map[string]string, len(g.clients))
	for i, c := range g.clients {
		per[i] = c.SecretHashes(app, secrets)
	}
	return joinSecretHashes(per)
}

// mergeSecretHashes merges the hashes of one app as each host reports it
// (nil where absent) like Group.SecretHashes does: nil unless every host
// reports them.
func mergeSecretHashes(seen []*targets.ObservedApp) map[string]string {
	per := make([]map[string]string, len(seen))
	for i, a := range seen {
		if a == nil || a.SecretHashes == nil {
			return nil
		}
		per[i] = a.SecretHashes
	}
	return joinSecretHashes(per)
}

// joinSecretHashes joins per-host hashes by name; a name some host lacks
// gets an empty part, so it differs from a set where every host has it.
func joinSecretHashes(per []map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range per {
		for name := range m {
			out[name] = ""
		}
	}
	for name := range out {
		parts := make([]string, len(per))
		for i, m := range per {
			parts[i] = m[name]
		}
		out[name] = strings.Join(parts, ",")
	}
	return out
}

// putSameVersion serves v — the digest that serves now, typically with new
// secrets — in place of old.cur through Runtime.Reconfigure: no new
// artifact, and the version kept for rollback stays what it was (a PUT of
// the serving digest does not make the serving version its own previous).
// DeployedAt stays the version's first deploy. Persisting comes last; if it
// fails, the old secrets are put back.
func (s *Server) putSameVersion(ctx context.Context, name string, old *entry, v *state.Version, mat material, bundle host.Bundle, owner string) (AppInfo, error) {
	v.DeployedAt = old.cur.DeployedAt
	if err := s.rt.Reconfigure(ctx, v.App, bundle); err != nil {
		return AppInfo{}, fmt.Errorf("deploying %s: %w", v.Ref, err)
	}
	next := &entry{cur: v, prev: old.prev}
	if s.store != nil {
		if err := s.store.Save(state.Record{Name: name, Current: *v, Previous: old.prev, Owner: owner}, mat.blobs(v)); err != nil {
			if ob, berr := mat.bundle(old.cur.Secrets); berr == nil && s.rt.Reconfigure(ctx, old.cur.App, ob) == nil {
				next = old
			}
			s.setEntry(name, next)
			return AppInfo{}, fmt.Errorf("%w: %w (the version before keeps serving)", errPersist, err)
		}
	}
	s.setEntry(name, next)
	s.setOwner(name, owner)
	s.log.LogAttrs(ctx, slog.LevelInfo, "app reconfigured", slog.String("app", name), slog.String("ref", v.Ref),
		slog.Int("secrets", len(v.Secrets)))
	return s.Get(name)
}
