package driver

import (
	"strings"

	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/api"
)

var (
	_ targets.SecretHasher = (*Client)(nil)
	_ targets.SecretHasher = (*Group)(nil)
)

// SecretHashes implements targets.SecretHasher: the hashes the host reports
// in AppInfo.SecretHashes for app when it runs with secrets.
func (c *Client) SecretHashes(app string, secrets map[string]string) map[string]string {
	return api.SecretHashes(api.SecretHashKey(c.token), app, secrets)
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
