package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxPlanFileBytes bounds what ReadPlanFile reads (a plan over thousands of
// apps is a few MB).
const maxPlanFileBytes = 256 << 20

// MarshalPlan encodes p as a plan file's bytes: indented JSON of the Plan
// struct, with a trailing newline. Secret values are never included
// (DesiredApp.Secrets is not serialised).
func MarshalPlan(p *Plan) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no plan", ErrPlanFormat)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sync: encode plan: %w", err)
	}
	return append(b, '\n'), nil
}

// UnmarshalPlan decodes a plan file's bytes. It checks the format marker
// and version first: a document that is not a ferry plan, or one written in
// a newer format than FormatVersion, is refused with an error wrapping
// ErrPlanFormat, before the rest is decoded.
func UnmarshalPlan(b []byte) (*Plan, error) {
	var head struct {
		Format        string `json:"format"`
		FormatVersion int    `json:"format_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: not a ferry plan file: %w", ErrPlanFormat, err)
	}
	if head.Format != formatName {
		return nil, fmt.Errorf("%w: not a ferry plan file (format %q, want %q)", ErrPlanFormat, head.Format, formatName)
	}
	if head.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("%w: the plan file has format version %d, newer than version %d that this ferry reads; apply it with the ferry that wrote it or a newer one",
			ErrPlanFormat, head.FormatVersion, FormatVersion)
	}
	if head.FormatVersion < 1 {
		return nil, fmt.Errorf("%w: the plan file has invalid format version %d", ErrPlanFormat, head.FormatVersion)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: malformed plan file: %w", ErrPlanFormat, err)
	}
	return &p, nil
}

// WritePlanFile writes p to path atomically: it writes a temporary file in
// the same directory, syncs it, reads it back and checks it decodes to the
// same bytes, then renames it over path. A crash leaves either the old file
// or the new one, never a torn one. The file is created with mode 0644: it
// holds no secret values.
func WritePlanFile(path string, p *Plan) error {
	b, err := MarshalPlan(p)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("sync: write plan file: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("sync: write plan file: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("sync: write plan file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync: write plan file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sync: write plan file: %w", err)
	}
	back, err := os.ReadFile(tmp)
	if err != nil {
		return fmt.Errorf("sync: verify plan file: %w", err)
	}
	if !bytes.Equal(back, b) {
		return fmt.Errorf("sync: verify plan file: %s does not read back as written", tmp)
	}
	if _, err := UnmarshalPlan(back); err != nil {
		return fmt.Errorf("sync: verify plan file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sync: write plan file: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: persist the rename
		d.Close()
	}
	return nil
}

// ReadPlanFile reads a plan written by WritePlanFile. See UnmarshalPlan for
// the format checks. A plan that reads fine may still be refused by Apply
// (errored or stale).
func ReadPlanFile(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sync: read plan file: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxPlanFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sync: read plan file: %w", err)
	}
	if n > maxPlanFileBytes {
		return nil, fmt.Errorf("%w: plan file %s is larger than %d bytes", ErrPlanFormat, path, maxPlanFileBytes)
	}
	p, err := UnmarshalPlan(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sync: read plan file %s: %w", path, err)
	}
	return p, nil
}
