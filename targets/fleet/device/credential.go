package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// CredentialFile is the name of the device's identity file in its data
// directory (mode 0600).
const CredentialFile = "device.json"

// Credential is the device's identity: the ID the server assigned at
// enrollment and the bearer credential that goes with it. Its String and
// LogValue never show the secret, so printing or logging one by mistake
// leaks nothing.
type Credential struct {
	// Server is the URL the device enrolled with.
	Server string `json:"server"`
	// DeviceID names the device in every path.
	DeviceID string `json:"device_id"`
	// Secret is the bearer credential.
	Secret string `json:"credential"`
}

// String describes the credential without its secret.
func (c Credential) String() string { return "device " + c.DeviceID + " (credential redacted)" }

// LogValue is the credential as slog shows it: the device ID only.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("device_id", c.DeviceID), slog.String("credential", "REDACTED"))
}

// LoadCredential reads the credential stored in dir. ok is false (and err
// nil) when there is none yet. A file that does not parse, lacks a field
// or is readable by others is an error wrapping ErrCredentialFile.
func LoadCredential(dir string) (c Credential, ok bool, err error) {
	p := filepath.Join(dir, CredentialFile)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Credential{}, false, nil
	}
	if err != nil {
		return Credential{}, false, fmt.Errorf("%w: %v", ErrCredentialFile, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Credential{}, false, fmt.Errorf("%w: %s has mode %v: it must be readable by its owner only (chmod 600)", ErrCredentialFile, p, fi.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return Credential{}, false, fmt.Errorf("%w: %v", ErrCredentialFile, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		// The error of a failed parse may quote the content: say less.
		return Credential{}, false, fmt.Errorf("%w: %s is not valid JSON", ErrCredentialFile, p)
	}
	if c.DeviceID == "" || c.Secret == "" {
		return Credential{}, false, fmt.Errorf("%w: %s lacks the device ID or the credential", ErrCredentialFile, p)
	}
	return c, true, nil
}

// SaveCredential stores c in dir atomically: a temporary file in dir,
// mode 0600, written and synced, then renamed over CredentialFile and the
// directory synced. A crash leaves either the old file or the new one.
// dir is created (0700) when missing.
func SaveCredential(dir string, c Credential) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrCredentialFile, err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCredentialFile, err)
	}
	f, err := os.CreateTemp(dir, ".device-*.json")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCredentialFile, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after the rename
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(append(b, '\n'))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, CredentialFile))
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCredentialFile, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
