package server

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// storeVersion is the format version of every file of the store.
const storeVersion = 1

// deviceRecord is devices/<id>.json.
type deviceRecord struct {
	Version  int               `json:"version"`
	ID       string            `json:"id"`
	Name     string            `json:"name,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	CredHash string            `json:"credential_sha256"`
	TokenID  string            `json:"token_id,omitempty"`
	Enrolled time.Time         `json:"enrolled"`
	LastSeen time.Time         `json:"last_seen,omitzero"`
	// LastReport is when the last status report arrived (server clock).
	LastReport time.Time         `json:"last_report,omitzero"`
	Info       api.DeviceInfo    `json:"info"`
	Status     *api.StatusReport `json:"status,omitempty"`
	Revoked    time.Time         `json:"revoked,omitzero"`
}

// tokenRecord is one entry of tokens.json.
type tokenRecord struct {
	ID      string            `json:"id"`
	Hash    string            `json:"sha256"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Expires time.Time         `json:"expires,omitzero"`
	MaxUses int               `json:"max_uses,omitempty"`
	Uses    int               `json:"uses"`
	Revoked time.Time         `json:"revoked,omitzero"`
}

type tokensFile struct {
	Version int           `json:"version"`
	Tokens  []tokenRecord `json:"tokens"`
}

// writeAtomic writes data to path so that a crash at any moment leaves
// either the old or the new content: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%w: writing %s: %w", ErrStore, path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: writing %s: %w", ErrStore, path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: writing %s: %w", ErrStore, path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%w: syncing %s: %w", ErrStore, dir, err)
	}
	return nil
}

// WriteFileAtomic writes data to path with mode 0600 the way the store
// does: a temporary file in the same directory, fsync, rename, fsync of the
// directory. Errors wrap ErrStore. The fleet controller persists its
// rollouts with it.
func WriteFileAtomic(path string, data []byte) error { return writeAtomic(path, data) }

func (s *Server) devicePath(id string) string {
	return filepath.Join(s.dir, "devices", id+".json")
}

// load reads the store directory, creating it when missing.
func (s *Server) load() error {
	if err := os.MkdirAll(filepath.Join(s.dir, "devices"), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, "tokens.json"))
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return fmt.Errorf("%w: %w", ErrStore, err)
	default:
		var tf tokensFile
		if err := json.Unmarshal(data, &tf); err != nil {
			return fmt.Errorf("%w: tokens.json: %w", ErrStore, err)
		}
		if tf.Version != storeVersion {
			return fmt.Errorf("%w: tokens.json has format version %d (this ferry reads %d)", ErrStore, tf.Version, storeVersion)
		}
		for _, t := range tf.Tokens {
			s.tokens[t.ID] = &t
		}
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, "devices"))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			// A temporary file left by a crash mid-write: the record it
			// would have replaced is intact.
			os.Remove(filepath.Join(s.dir, "devices", name))
			continue
		}
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || !validID(id) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, "devices", name))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrStore, err)
		}
		var rec deviceRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("%w: device %s: %w", ErrStore, id, err)
		}
		if rec.Version != storeVersion || rec.ID != id {
			return fmt.Errorf("%w: device file %s is not a device record of format version %d", ErrStore, name, storeVersion)
		}
		d := newDevice(rec)
		s.devices[id] = d
		if rec.Revoked.IsZero() {
			s.creds[rec.CredHash] = id
		}
	}
	return nil
}

// saveTokens writes tokens.json; the caller holds s.tokenMu.
func (s *Server) saveTokens() error {
	tf := tokensFile{Version: storeVersion}
	s.mu.Lock()
	for _, t := range s.tokens {
		tf.Tokens = append(tf.Tokens, *t)
	}
	s.mu.Unlock()
	sortTokens(tf.Tokens)
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return s.write(filepath.Join(s.dir, "tokens.json"), data)
}

// saveDevice writes d's record as of now. Writes of one device are
// serialised and never go back in time.
func (s *Server) saveDevice(d *device) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	// Take the write's turn before encoding the record: thousands of
	// reports may wait for one, and they should not each hold an encoded
	// copy meanwhile (and the record written is the latest).
	s.writes <- struct{}{}
	defer func() { <-s.writes }()
	s.mu.Lock()
	rec := d.rec
	rec.Labels = cloneMap(rec.Labels)
	s.mu.Unlock()
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return writeAtomic(s.devicePath(rec.ID), data)
}

// write is writeAtomic within the server's bound of concurrent writes
// (Options.StoreWriters): a request waiting for its turn parks its
// goroutine, not an OS thread.
func (s *Server) write(path string, data []byte) error {
	s.writes <- struct{}{}
	defer func() { <-s.writes }()
	return writeAtomic(path, data)
}
