package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/signer"
)

// Record is what the store keeps for one app.
type Record struct {
	// Name is the app's name (also its directory name).
	Name string
	// Current is the version that serves.
	Current Version
	// Previous is the version kept for rollback; nil when there is none.
	Previous *Version
	// Owner is the app's owner, the identity of the spec source and target
	// that deployed it (at most MaxOwnerLen printable bytes). It belongs to
	// the app, not to a version: a rollback keeps it. Empty in Save keeps
	// the owner already recorded; Load returns "" for a record written
	// before owners were recorded.
	Owner string
	// RolledBack is set when the host's health prober rolled the app back
	// by itself to Current (RolledBack.To is Current's digest): from which
	// version, when and why. Nil otherwise; a PUT clears it. It survives a
	// restart so that whoever deploys to the host still sees that the
	// version it asked for was rolled back.
	RolledBack *Rollback
}

// MaxOwnerLen bounds Record.Owner.
const MaxOwnerLen = 512

// ValidOwner reports whether owner may be recorded: at most MaxOwnerLen
// bytes of printable ASCII (empty is valid: no owner).
func ValidOwner(owner string) bool {
	if len(owner) > MaxOwnerLen {
		return false
	}
	for i := 0; i < len(owner); i++ {
		if owner[i] < 0x20 || owner[i] > 0x7e {
			return false
		}
	}
	return true
}

// Rollback records a rollback the host made by itself.
type Rollback struct {
	// From is the digest of the version that was rolled back.
	From string `json:"from"`
	// FromRef is its artifact reference.
	FromRef string `json:"from_ref,omitempty"`
	// To is the digest of the version that serves again.
	To string `json:"to"`
	// Reason says why, in a full sentence.
	Reason string `json:"reason"`
	// At is when it happened (host clock, UTC).
	At time.Time `json:"at"`
}

// Version is one deployed version of an app.
type Version struct {
	// Ref is the artifact reference it was pulled from, "REPO@sha256:...".
	Ref string `json:"ref"`
	// Digest is the app manifest digest, "sha256:<hex>".
	Digest string `json:"digest"`
	// App is the resolved configuration from the artifact. Every
	// component's Digest names a module blob in the store.
	App deploy.App `json:"app"`
	// Files maps the name of each component that has declared files to
	// the digest of its files archive (the artifact's files layer, a tar),
	// a blob in the store like the modules. Nil when no component has
	// files.
	Files map[string]string `json:"files,omitempty"`
	// Signatures are the signatures that verified when the version was
	// deployed, for signer.VerifyLocal. Empty when the host ran with
	// verification turned off.
	Signatures []signer.Signature `json:"signatures,omitempty"`
	// VerifiedBy names the trust key that verified it; empty when
	// verification was turned off.
	VerifiedBy string `json:"verified_by,omitempty"`
	// DeployedAt is when the version was first deployed on this host.
	DeployedAt time.Time `json:"deployed_at"`
	// Secrets are the values of secret variables given with the version.
	// They are stored in a separate 0600 file, never in the record, and
	// are never logged.
	Secrets map[string]string `json:"-"`
}

// Modules lists the module digests the version needs, in component order,
// without duplicates.
func (v *Version) Modules() []string {
	var out []string
	for _, c := range v.App.Components {
		if !slices.Contains(out, c.Digest) {
			out = append(out, c.Digest)
		}
	}
	return out
}

// Blobs lists every blob digest the version needs — its modules, then its
// files archives by component name — without duplicates.
func (v *Version) Blobs() []string {
	out := v.Modules()
	for _, name := range slices.Sorted(maps.Keys(v.Files)) {
		if d := v.Files[name]; !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// diskRecord is app.json.
type diskRecord struct {
	Format   int          `json:"format"`
	Name     string       `json:"name"`
	Current  diskVersion  `json:"current"`
	Previous *diskVersion `json:"previous,omitempty"`
	// Owner is Record.Owner; absent in records written before owners.
	Owner string `json:"owner,omitempty"`
	// RolledBack is Record.RolledBack (absent in records written before
	// it existed, which read as nil).
	RolledBack *Rollback `json:"rolled_back,omitempty"`
}

type diskVersion struct {
	Version
	SecretsFile string `json:"secrets_file,omitempty"`
}

const recordFormat = 1

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	hexRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Store is a state directory. Create it with Open. It is safe for
// concurrent use.
type Store struct {
	dir string

	mu   sync.Mutex
	refs map[string]int // blob digest -> number of versions naming it
}

// Open opens the state directory dir, creating it if needed and setting
// its mode to 0700. It
// reads every readable record to learn which blobs are in use; records that
// cannot be read are left alone (Load reports them).
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: no state directory", ErrInvalid)
	}
	for _, d := range []string{dir, filepath.Join(dir, "apps"), filepath.Join(dir, "blobs", "sha256")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	// The directory holds secrets: make sure only the owner can enter it,
	// even if it existed before.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	s := &Store{dir: dir, refs: map[string]int{}}
	names, err := s.Names()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		rec, err := s.readRecord(n)
		if err != nil {
			continue
		}
		s.count(rec, +1)
	}
	return s, nil
}

// Dir returns the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

func (s *Store) appDir(name string) string { return filepath.Join(s.dir, "apps", name) }

func (s *Store) blobPath(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !hexRE.MatchString(hexPart) {
		return "", fmt.Errorf("%w: digest %q is not sha256:<64 lowercase hex>", ErrInvalid, digest)
	}
	return filepath.Join(s.dir, "blobs", "sha256", hexPart), nil
}

// Names returns the names of the apps with a directory in the store, sorted.
// It does not read their records.
func (s *Store) Names() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "apps"))
	if err != nil {
		return nil, fmt.Errorf("state: listing apps: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && nameRE.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Load returns the record of app name with the secrets of each version. It
// returns ErrNotFound when there is none and ErrCorrupt when the record or
// a secrets file cannot be decoded. Modules are read separately with Blob.
func (s *Store) Load(name string) (Record, error) {
	if !nameRE.MatchString(name) {
		return Record{}, fmt.Errorf("%w: app name %q", ErrInvalid, name)
	}
	dr, err := s.readRecord(name)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Name: dr.Name, Owner: dr.Owner, RolledBack: dr.RolledBack}
	cur, err := s.readVersion(name, dr.Current)
	if err != nil {
		return Record{}, err
	}
	rec.Current = cur
	if dr.Previous != nil {
		prev, err := s.readVersion(name, *dr.Previous)
		if err != nil {
			return Record{}, err
		}
		rec.Previous = &prev
	}
	return rec, nil
}

func (s *Store) readRecord(name string) (*diskRecord, error) {
	path := filepath.Join(s.appDir(name), "app.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: app %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("state: app %q: %w", name, err)
	}
	var dr diskRecord
	if err := json.Unmarshal(b, &dr); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if dr.Format != recordFormat {
		return nil, fmt.Errorf("%w: %s: unknown format %d", ErrCorrupt, path, dr.Format)
	}
	if dr.Name != name {
		return nil, fmt.Errorf("%w: %s: record names app %q", ErrCorrupt, path, dr.Name)
	}
	if !ValidOwner(dr.Owner) {
		return nil, fmt.Errorf("%w: %s: owner is not printable ASCII of at most %d bytes", ErrCorrupt, path, MaxOwnerLen)
	}
	for _, v := range append([]*diskVersion{&dr.Current}, dr.Previous) {
		if v == nil {
			continue
		}
		for _, d := range v.Blobs() {
			if _, err := s.blobPath(d); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
			}
		}
		if v.SecretsFile != "" && !secretsFileRE.MatchString(v.SecretsFile) {
			return nil, fmt.Errorf("%w: %s: bad secrets file name", ErrCorrupt, path)
		}
	}
	return &dr, nil
}

var secretsFileRE = regexp.MustCompile(`^secrets-[0-9a-f]{32}\.json$`)

func (s *Store) readVersion(name string, dv diskVersion) (Version, error) {
	v := dv.Version
	if dv.SecretsFile == "" {
		return v, nil
	}
	path := filepath.Join(s.appDir(name), dv.SecretsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Version{}, fmt.Errorf("%w: app %q: secrets of %s: %v", ErrCorrupt, name, v.Digest, errors.Unwrap(err))
	}
	if err := json.Unmarshal(b, &v.Secrets); err != nil {
		// The decoder's message may quote the file; never show secrets.
		return Version{}, fmt.Errorf("%w: app %q: secrets file of %s cannot be decoded", ErrCorrupt, name, v.Digest)
	}
	return v, nil
}

// Blob returns the blob (a module or a files archive) with the given
// digest, verified against it: ErrNotFound when it is missing, ErrCorrupt
// when its bytes do not match.
func (s *Store) Blob(digest string) ([]byte, error) {
	path, err := s.blobPath(digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("state: blob %s: %w", digest, err)
	}
	if got := sha256.Sum256(b); "sha256:"+hex.EncodeToString(got[:]) != digest {
		return nil, fmt.Errorf("%w: blob %s: content hashes to sha256:%x", ErrCorrupt, digest, got)
	}
	return b, nil
}

// Modules returns every module v needs, by digest, each verified.
func (s *Store) Modules(v *Version) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, d := range v.Modules() {
		b, err := s.Blob(d)
		if err != nil {
			return nil, err
		}
		out[d] = b
	}
	return out, nil
}

// Files returns the files archive of every component of v that has one,
// by component name, each verified against its digest. It returns nil when
// v has no files.
func (s *Store) Files(v *Version) (map[string][]byte, error) {
	var out map[string][]byte
	for _, name := range slices.Sorted(maps.Keys(v.Files)) {
		b, err := s.Blob(v.Files[name])
		if err != nil {
			return nil, fmt.Errorf("files of component %q: %w", name, err)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = b
	}
	return out, nil
}

// Save stores rec, replacing the app's record atomically. blobs must hold
// every blob of rec's versions (modules and files archives, see
// Version.Blobs) that is not already in the store, by digest; their bytes
// are verified. Blobs no version names any more are removed, as are the
// app's old secrets files. An empty rec.Owner keeps the owner the app's
// record already has; an invalid one (see ValidOwner) is ErrInvalid.
func (s *Store) Save(rec Record, blobs map[string][]byte) error {
	if !nameRE.MatchString(rec.Name) {
		return fmt.Errorf("%w: app name %q", ErrInvalid, rec.Name)
	}
	if !ValidOwner(rec.Owner) {
		return fmt.Errorf("%w: owner of app %q is not printable ASCII of at most %d bytes", ErrInvalid, rec.Name, MaxOwnerLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := []*Version{&rec.Current}
	if rec.Previous != nil {
		vs = append(vs, rec.Previous)
	}
	for _, v := range vs {
		for _, d := range v.Blobs() {
			if err := s.putBlob(d, blobs[d]); err != nil {
				return err
			}
		}
	}
	dir := s.appDir(rec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: app %q: %w", rec.Name, err)
	}
	old, _ := s.readRecord(rec.Name)
	dr := diskRecord{Format: recordFormat, Name: rec.Name, Owner: rec.Owner, RolledBack: rec.RolledBack}
	if dr.Owner == "" && old != nil {
		dr.Owner = old.Owner
	}
	var keep []string
	for i, v := range vs {
		dv := diskVersion{Version: *v}
		if len(v.Secrets) > 0 {
			f, err := s.writeSecrets(dir, v.Secrets)
			if err != nil {
				return fmt.Errorf("state: app %q: %w", rec.Name, err)
			}
			dv.SecretsFile = f
			keep = append(keep, f)
		}
		if i == 0 {
			dr.Current = dv
		} else {
			dr.Previous = &dv
		}
	}
	b, err := json.MarshalIndent(dr, "", "  ")
	if err != nil {
		return fmt.Errorf("state: app %q: %w", rec.Name, err)
	}
	if err := writeAtomic(filepath.Join(dir, "app.json"), b, 0o600); err != nil {
		return fmt.Errorf("state: app %q: %w", rec.Name, err)
	}
	s.count(&dr, +1)
	if old != nil {
		s.count(old, -1)
	}
	s.removeSecrets(dir, keep)
	return nil
}

// Delete removes the app's record, its secrets and the blobs no other
// version names. Deleting an absent app is not an error.
func (s *Store) Delete(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: app name %q", ErrInvalid, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, _ := s.readRecord(name)
	if err := os.RemoveAll(s.appDir(name)); err != nil {
		return fmt.Errorf("state: deleting app %q: %w", name, err)
	}
	if err := syncDir(filepath.Join(s.dir, "apps")); err != nil {
		return fmt.Errorf("state: deleting app %q: %w", name, err)
	}
	if old != nil {
		s.count(old, -1)
	}
	return nil
}

// count adds delta to the reference count of every blob dr names and
// removes the blobs whose count drops to zero. Called with s.mu held (or
// from Open).
func (s *Store) count(dr *diskRecord, delta int) {
	for _, v := range []*diskVersion{&dr.Current, dr.Previous} {
		if v == nil {
			continue
		}
		for _, d := range v.Blobs() {
			s.refs[d] += delta
			if s.refs[d] <= 0 {
				delete(s.refs, d)
				if p, err := s.blobPath(d); err == nil {
					os.Remove(p)
				}
			}
		}
	}
}

// putBlob makes sure the blob for digest is in the store, writing b
// (verified) when it is missing or damaged.
func (s *Store) putBlob(digest string, b []byte) error {
	path, err := s.blobPath(digest)
	if err != nil {
		return err
	}
	if _, err := s.Blob(digest); err == nil {
		return nil
	}
	if b == nil {
		return fmt.Errorf("%w: blob %s is neither given nor stored", ErrInvalid, digest)
	}
	if got := sha256.Sum256(b); "sha256:"+hex.EncodeToString(got[:]) != digest {
		return fmt.Errorf("%w: blob given for %s hashes to sha256:%x", ErrInvalid, digest, got)
	}
	if err := writeAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("state: blob %s: %w", digest, err)
	}
	return nil
}

func (s *Store) writeSecrets(dir string, secrets map[string]string) (string, error) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := "secrets-" + hex.EncodeToString(rnd[:]) + ".json"
	b, err := json.Marshal(secrets)
	if err != nil {
		return "", errors.New("encoding secrets failed")
	}
	if err := writeAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
		return "", err
	}
	return name, nil
}

// removeSecrets deletes the secrets files in dir other than keep.
func (s *Store) removeSecrets(dir string, keep []string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if secretsFileRE.MatchString(e.Name()) && !slices.Contains(keep, e.Name()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// writeAtomic writes b to path through a temporary file in the same
// directory: write, fsync, close, rename, fsync the directory.
func writeAtomic(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
