package history

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
	bolt "go.etcd.io/bbolt"
)

// SnapshotVersion is the format version Export writes and Import reads.
const SnapshotVersion = 1

// Snapshot is the part of a Store that an agent needs to continue where
// another one stopped: every rollback pin, suspension and host rollback,
// the last success, the newest rounds, each app's recent history (its
// changes, without the runs of identical no-op records between them) and
// the artifacts those records, pins and rollbacks name, so that a rollback
// still knows what to deploy. Secrets are never in it (artifacts are
// stored stripped). Export makes one, Import merges one into a Store,
// Encode and DecodeSnapshot turn it into bytes and back.
type Snapshot struct {
	// Version is SnapshotVersion.
	Version int `json:"version"`
	// Sequence is the ID of the newest round ever begun: a store that
	// imports the snapshot numbers its next round after it.
	Sequence uint64 `json:"sequence"`
	// LastSuccess is the last round that succeeded; zero when none did.
	LastSuccess Success `json:"last_success,omitzero"`
	// Pins, Suspended and HostRollbacks are all of them.
	Pins          []Pin          `json:"pins,omitempty"`
	Suspended     []Suspension   `json:"suspended,omitempty"`
	HostRollbacks []HostRollback `json:"host_rollbacks,omitempty"`
	// Rounds are the newest rounds, oldest first.
	Rounds []Round `json:"rounds,omitempty"`
	// Apps are the exported app records, by app and then oldest first.
	Apps []AppRecord `json:"apps,omitempty"`
	// Artifacts are the recorded desired apps (secrets stripped) that Apps,
	// Rounds, Pins or HostRollbacks name.
	Artifacts []targets.DesiredApp `json:"artifacts,omitempty"`
}

// ExportOptions bound a Snapshot. The zero value of each field is its
// default.
type ExportOptions struct {
	// Rounds is how many of the newest rounds are exported. Zero means 50.
	Rounds int
	// AppRecords is how many records per app are exported after runs of
	// identical no-op records are folded. Zero means 100.
	AppRecords int
}

// ErrSnapshot means a snapshot's bytes are not one Encode wrote (corrupt,
// or written by a newer ferry). Retrying does not help.
var ErrSnapshot = errors.New("history: unreadable state snapshot")

// Export returns the store's snapshot, bounded by o, in one read
// transaction.
func (h *Store) Export(o ExportOptions) (*Snapshot, error) {
	nRounds := o.Rounds
	if nRounds <= 0 {
		nRounds = 50
	}
	nApps := o.AppRecords
	if nApps <= 0 {
		nApps = 100
	}
	s := &Snapshot{Version: SnapshotVersion}
	var arts map[string]targets.DesiredApp
	err := h.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRounds)
		s.Sequence = rb.Sequence()
		c := rb.Cursor()
		for k, v := c.Last(); k != nil && len(s.Rounds) < nRounds; k, v = c.Prev() {
			var r Round
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			s.Rounds = append(s.Rounds, r)
		}
		slices.Reverse(s.Rounds)
		ab := tx.Bucket(bucketApps)
		err := ab.ForEachBucket(func(name []byte) error {
			var recs []AppRecord
			err := ab.Bucket(name).ForEach(func(_, v []byte) error {
				var rec AppRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return err
				}
				recs = append(recs, rec)
				return nil
			})
			if err != nil {
				return err
			}
			recs = foldNoops(recs)
			if len(recs) > nApps {
				recs = recs[len(recs)-nApps:]
			}
			s.Apps = append(s.Apps, recs...)
			return nil
		})
		if err != nil {
			return err
		}
		for name, dst := range map[string]any{string(bucketPins): &s.Pins, string(bucketSuspended): &s.Suspended, string(bucketHostRollbacks): &s.HostRollbacks} {
			err := tx.Bucket([]byte(name)).ForEach(func(_, v []byte) error {
				switch d := dst.(type) {
				case *[]Pin:
					var p Pin
					if err := json.Unmarshal(v, &p); err != nil {
						return err
					}
					*d = append(*d, p)
				case *[]Suspension:
					var x Suspension
					if err := json.Unmarshal(v, &x); err != nil {
						return err
					}
					*d = append(*d, x)
				case *[]HostRollback:
					var x HostRollback
					if err := json.Unmarshal(v, &x); err != nil {
						return err
					}
					*d = append(*d, x)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(metaLastSuccess); v != nil {
			if err := json.Unmarshal(v, &s.LastSuccess); err != nil {
				return err
			}
		}
		arts = map[string]targets.DesiredApp{}
		art := tx.Bucket(bucketArtifacts)
		for key := range s.references() {
			if v := art.Get([]byte(key)); v != nil {
				var a targets.DesiredApp
				if err := json.Unmarshal(v, &a); err != nil {
					return err
				}
				arts[key] = a
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history: export: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(arts)) {
		s.Artifacts = append(s.Artifacts, arts[k])
	}
	return s, nil
}

// foldNoops drops, from one app's records (oldest first), the no-op
// records that only repeat what the record before them on the same target
// said (same digest, deployed), keeping the newest record of each target.
// What remains is the app's history of changes, which is what Pin walks.
func foldNoops(recs []AppRecord) []AppRecord {
	keep := make([]bool, len(recs))
	last := map[string]int{} // target → index of its newest record
	prev := map[string]*AppRecord{}
	for i := range recs {
		r := &recs[i]
		p := prev[r.Target]
		repeat := p != nil && r.Action == string(plan.ActionNoop) && r.Result == string(plan.OutcomeUnchanged) &&
			p.Digest == r.Digest && (p.Result == string(plan.OutcomeUnchanged) || p.Result == string(plan.OutcomeApplied))
		keep[i] = !repeat
		if !repeat {
			prev[r.Target] = r
		}
		last[r.Target] = i
	}
	for _, i := range last {
		keep[i] = true
	}
	out := recs[:0:0]
	for i, r := range recs {
		if keep[i] {
			out = append(out, r)
		}
	}
	return out
}

// references are the "APP@DIGEST" keys of the artifacts s's records name.
func (s *Snapshot) references() map[string]bool {
	refs := map[string]bool{}
	add := func(app, digest string) {
		if app != "" && digest != "" {
			refs[app+"@"+digest] = true
		}
	}
	for _, r := range s.Apps {
		add(r.App, r.Digest)
		add(r.App, r.Previous)
	}
	for _, rd := range s.Rounds {
		for _, r := range rd.Apps {
			add(r.App, r.Digest)
			add(r.App, r.Previous)
		}
	}
	for _, p := range s.Pins {
		add(p.App, p.Digest)
		add(p.App, p.BaseDigest)
	}
	for _, rb := range s.HostRollbacks {
		add(rb.App, rb.From)
		add(rb.App, rb.To)
	}
	return refs
}

// Shrink drops the older half of s's rounds, or when one round is left,
// the older half of each app's records, and the artifacts nothing names
// any more. Pins, suspensions, host rollbacks and the newest record of
// each app are never dropped. It reports whether it dropped anything.
func (s *Snapshot) Shrink() bool {
	switch {
	case len(s.Rounds) > 1:
		s.Rounds = slices.Clone(s.Rounds[len(s.Rounds)/2:])
	default:
		var out []AppRecord
		dropped := false
		for i := 0; i < len(s.Apps); {
			j := i
			for j < len(s.Apps) && s.Apps[j].App == s.Apps[i].App {
				j++
			}
			n := j - i
			if n > 1 {
				dropped = true
			}
			out = append(out, s.Apps[i+n/2:j]...)
			i = j
		}
		if !dropped {
			if len(s.Rounds) == 0 {
				return false
			}
			s.Rounds = nil
		}
		s.Apps = out
	}
	refs := s.references()
	s.Artifacts = slices.DeleteFunc(s.Artifacts, func(a targets.DesiredApp) bool { return !refs[a.Name+"@"+a.Digest] })
	return true
}

// Encode returns s as gzip-compressed JSON.
func (s *Snapshot) Encode() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return nil, fmt.Errorf("history: encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("history: encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// maxSnapshotJSON bounds a decoded snapshot (a zip bomb is refused).
const maxSnapshotJSON = 256 << 20

// DecodeSnapshot reads what Encode wrote. Errors wrap ErrSnapshot.
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, maxSnapshotJSON+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if len(js) > maxSnapshotJSON {
		return nil, fmt.Errorf("%w: more than %d bytes uncompressed", ErrSnapshot, maxSnapshotJSON)
	}
	var s Snapshot
	if err := json.Unmarshal(js, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this ferry reads %d", ErrSnapshot, s.Version, SnapshotVersion)
	}
	return &s, nil
}

// Import merges s into the store in one transaction: s's pins,
// suspensions and host rollbacks replace the store's (the snapshot is the
// truth), its rounds, app records and artifacts are added (a round of the
// same ID is replaced; one still running is marked interrupted, as Open
// does), the last success is the newer of the two, and the next round's ID
// follows both. It returns the IDs of the rounds marked interrupted.
func (h *Store) Import(s *Snapshot) ([]uint64, error) {
	if s == nil {
		return nil, nil
	}
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("%w: version %d, this ferry reads %d", ErrSnapshot, s.Version, SnapshotVersion)
	}
	var interrupted []uint64
	err := h.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRounds)
		seq := max(rb.Sequence(), s.Sequence)
		for _, r := range s.Rounds {
			if r.Result == RoundRunning {
				r.Result = RoundInterrupted
				r.Error = "the agent stopped before the round finished; the next round converges"
				interrupted = append(interrupted, r.ID)
			}
			seq = max(seq, r.ID)
			b, err := json.Marshal(&r)
			if err != nil {
				return err
			}
			if err := rb.Put(u64(r.ID), b); err != nil {
				return err
			}
		}
		if err := rb.SetSequence(seq); err != nil {
			return err
		}
		ab := tx.Bucket(bucketApps)
		for _, rec := range s.Apps {
			if rec.App == "" {
				continue
			}
			sub, err := ab.CreateBucketIfNotExists([]byte(rec.App))
			if err != nil {
				return err
			}
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := sub.Put(appKey(rec.Round, rec), v); err != nil {
				return err
			}
		}
		art := tx.Bucket(bucketArtifacts)
		for _, a := range s.Artifacts {
			key := []byte(a.Name + "@" + a.Digest)
			if art.Get(key) != nil {
				continue
			}
			v, err := json.Marshal(plan.StripSecrets(a))
			if err != nil {
				return err
			}
			if err := art.Put(key, v); err != nil {
				return err
			}
		}
		replace := func(bucket []byte, put func(b *bolt.Bucket) error) error {
			if err := tx.DeleteBucket(bucket); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			b, err := tx.CreateBucket(bucket)
			if err != nil {
				return err
			}
			return put(b)
		}
		putJSON := func(b *bolt.Bucket, key string, v any) error {
			js, err := json.Marshal(v)
			if err != nil {
				return err
			}
			return b.Put([]byte(key), js)
		}
		if err := replace(bucketPins, func(b *bolt.Bucket) error {
			for _, p := range s.Pins {
				if err := putJSON(b, p.App, p); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := replace(bucketSuspended, func(b *bolt.Bucket) error {
			for _, x := range s.Suspended {
				if err := putJSON(b, x.App, x); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := replace(bucketHostRollbacks, func(b *bolt.Bucket) error {
			for _, x := range s.HostRollbacks {
				if err := putJSON(b, x.Target+"/"+x.App, x); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if s.LastSuccess.Commit != "" {
			mb := tx.Bucket(bucketMeta)
			var cur Success
			if v := mb.Get(metaLastSuccess); v != nil {
				_ = json.Unmarshal(v, &cur) // unreadable: replaced
			}
			if s.LastSuccess.Round >= cur.Round {
				if err := putJSON(mb, string(metaLastSuccess), s.LastSuccess); err != nil {
					return err
				}
			}
		}
		return h.prune(tx, seq)
	})
	if err != nil {
		return nil, fmt.Errorf("history: import: %w", err)
	}
	return interrupted, nil
}

// appKey is the key of rec, of round id, in its app's bucket: the round,
// the target and, for a record about a target's own rollback, its action
// (beside the round's change of the same app and target).
func appKey(id uint64, rec AppRecord) []byte {
	key := append(u64(id), rec.Target...)
	if rec.Action == ActionHostRollback || rec.Action == ActionUnhold {
		key = append(append(key, 0), rec.Action...)
	}
	return key
}
