package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferry-wasm/ferry/targets"
)

// fingerprintDomain separates this encoding from any other hashed data and
// versions it.
const fingerprintDomain = "ferry observed state v1\n"

// fingerprintApp is the part of an observed app a plan's decisions depend
// on. Status, Message, Ref and Previous are left out: they may change
// without changing what the plan would do. The phase is in: a rollout that
// was progressing when the plan waited for it, and is ready or failed now,
// makes the plan stale.
type fingerprintApp struct {
	Name    string `json:"n"`
	Digest  string `json:"d"`
	Managed bool   `json:"m"`
	Healthy bool   `json:"h"`
	// Secrets are the keyed hashes of the app's secret values; omitted
	// when there are none, so the fingerprint of an app without secrets
	// is what it was before secrets were compared.
	Secrets map[string]string `json:"s,omitempty"`
	// Owner is the app's recorded owner; omitted when none, so the
	// fingerprint of an app without one is what it was before owners.
	Owner string `json:"o,omitempty"`
	// Phase is the app's effective phase (targets.ObservedApp.
	// EffectivePhase); omitted when ready, so the fingerprint of a healthy
	// app is what it was before phases.
	Phase targets.Phase `json:"p,omitempty"`
}

// Fingerprint returns "sha256:<hex>" over a canonical encoding of observed:
// the apps sorted by name, each as one JSON line holding its name, digest,
// managed flag, health, the keyed hashes of its secret values (when it
// has any), its recorded owner (when it has one) and its phase (when it is
// not ready) — exactly what Compute's decisions depend on.
// The order of observed does not matter.
func Fingerprint(observed []targets.ObservedApp) string {
	apps := make([]fingerprintApp, len(observed))
	for i, o := range observed {
		apps[i] = fingerprintApp{Name: o.Name, Digest: o.Digest, Managed: o.Managed, Healthy: o.Healthy, Secrets: o.SecretHashes, Owner: o.Owner}
		if p := o.EffectivePhase(); p != targets.PhaseReady {
			apps[i].Phase = p
		}
	}
	slices.SortFunc(apps, func(a, b fingerprintApp) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	h.Write([]byte(fingerprintDomain))
	for _, a := range apps {
		b, _ := json.Marshal(a) // cannot fail: strings, bools and a string map (sorted keys)
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// describeMoves says, app by app, how now differs from before in the fields
// the fingerprint covers. The result is sorted by app name.
func describeMoves(before, now []targets.ObservedApp) []string {
	old := map[string]targets.ObservedApp{}
	for _, o := range before {
		old[o.Name] = o
	}
	cur := map[string]targets.ObservedApp{}
	for _, o := range now {
		cur[o.Name] = o
	}
	names := make([]string, 0, len(old)+len(cur))
	for n := range old {
		names = append(names, n)
	}
	for n := range cur {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var moves []string
	for _, n := range names {
		o, wasThere := old[n]
		c, isThere := cur[n]
		switch {
		case !wasThere:
			moves = append(moves, fmt.Sprintf("app %s appeared (runs %s)", n, ShortDigest(c.Digest)))
		case !isThere:
			moves = append(moves, fmt.Sprintf("app %s disappeared (plan saw %s)", n, ShortDigest(o.Digest)))
		default:
			if c.Digest != o.Digest {
				moves = append(moves, fmt.Sprintf("app %s now runs %s, plan saw %s", n, ShortDigest(c.Digest), ShortDigest(o.Digest)))
			}
			if c.Healthy != o.Healthy {
				moves = append(moves, fmt.Sprintf("app %s is now %s, plan saw it %s", n, healthWord(c), healthWord(o)))
			} else if cp, op := c.EffectivePhase(), o.EffectivePhase(); cp != op {
				moves = append(moves, fmt.Sprintf("app %s is now %s, plan saw it %s", n, cp, op))
			}
			if !maps.Equal(c.SecretHashes, o.SecretHashes) {
				moves = append(moves, fmt.Sprintf("app %s runs with other secret values than the plan saw", n))
			}
			if c.Owner != o.Owner {
				moves = append(moves, fmt.Sprintf("app %s is now %s, plan saw it %s", n, ownerPhrase(c.Owner), ownerPhrase(o.Owner)))
			}
			if c.Managed != o.Managed {
				if c.Managed {
					moves = append(moves, fmt.Sprintf("app %s is now managed by ferry, plan saw it unmanaged", n))
				} else {
					moves = append(moves, fmt.Sprintf("app %s is no longer managed by ferry", n))
				}
			}
		}
	}
	return moves
}

func healthWord(o targets.ObservedApp) string {
	if o.Healthy {
		return "healthy"
	}
	if o.Status != "" {
		return "unhealthy (" + o.Status + ")"
	}
	return "unhealthy"
}
