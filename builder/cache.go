package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// errCorrupt marks a cache entry whose bytes do not match its record.
var errCorrupt = errors.New("corrupt cache entry")

// cacheDir is the content-addressed cache: <key>.wasm holds the checked
// module and <key>.json its record. The record is written last, so its
// presence commits the entry.
type cacheDir string

// cacheRecord is the JSON record beside a cached module.
type cacheRecord struct {
	Digest    string    `json:"digest"`
	Size      int       `json:"size"`
	Component string    `json:"component"`
	Kind      Kind      `json:"kind"`
	Executor  string    `json:"executor"`
	Created   time.Time `json:"created"`
}

func (d cacheDir) path(key, ext string) string { return filepath.Join(string(d), key+ext) }

// get returns the module cached under key and its digest. It returns an
// error wrapping os.ErrNotExist when there is no entry, and errCorrupt when
// the entry does not match its record.
func (d cacheDir) get(key string) ([]byte, string, error) {
	raw, err := os.ReadFile(d.path(key, ".json"))
	if err != nil {
		return nil, "", err
	}
	var rec cacheRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, "", fmt.Errorf("%w: record: %v", errCorrupt, err)
	}
	wasm, err := os.ReadFile(d.path(key, ".wasm"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: module file missing", errCorrupt)
	}
	if err != nil {
		return nil, "", err
	}
	if got := digestOf(wasm); got != rec.Digest || len(wasm) != rec.Size {
		return nil, "", fmt.Errorf("%w: digest %s, record says %s", errCorrupt, got, rec.Digest)
	}
	return wasm, rec.Digest, nil
}

// put stores wasm under key atomically and returns its digest.
func (d cacheDir) put(key string, wasm []byte, c Component) (string, error) {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return "", err
	}
	digest := digestOf(wasm)
	rec, err := json.MarshalIndent(cacheRecord{
		Digest: digest, Size: len(wasm), Component: c.ID(), Kind: c.Kind,
		Executor: c.executor(), Created: time.Now().UTC(),
	}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeAtomic(d.path(key, ".wasm"), wasm); err != nil {
		return "", err
	}
	if err := writeAtomic(d.path(key, ".json"), rec); err != nil {
		return "", err
	}
	return digest, nil
}

// tempFile returns the path of a fresh temporary file in the cache's tmp
// directory for a tool to write to; the caller removes it.
func (d cacheDir) tempFile(pattern string) (string, error) {
	dir := filepath.Join(string(d), "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, nil
}

// writeAtomic writes data to a temp file beside path and renames it there.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// digestOf returns "sha256:<hex>" of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
