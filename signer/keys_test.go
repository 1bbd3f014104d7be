package signer

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateAndLoadKeys(t *testing.T) {
	const pw = "correct horse"
	priv, pub, err := GenerateKeyPair([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(priv, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) {
		t.Errorf("private key PEM starts %q", priv[:40])
	}
	if !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Errorf("public key PEM starts %q", pub[:30])
	}
	k, err := LoadPrivateKey(priv, []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*ecdsa.PublicKey); !ok {
		t.Errorf("public key is %T, want *ecdsa.PublicKey", p)
	}
	if !equalKeys(k.Public(), p) || k.KeyID() != KeyID(p) || !strings.HasPrefix(k.KeyID(), "SHA256:") {
		t.Errorf("private key's public half %s does not match public key %s", k.KeyID(), KeyID(p))
	}
	pem, err := k.PublicPEM()
	if err != nil || !bytes.Equal(pem, pub) {
		t.Errorf("PublicPEM = %q, %v; want the generated public key", pem, err)
	}

	// An empty password is allowed, as in cosign.
	priv0, _, err := GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(priv0, nil); err != nil {
		t.Errorf("empty password: %v", err)
	}
}

func TestKeyErrors(t *testing.T) {
	const pw = "s3cret-Passw0rd"
	priv, pub, err := GenerateKeyPair([]byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	unencrypted := []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n")
	for _, tc := range []struct {
		name string
		load func() error
		want error
		msg  string
	}{
		{"wrong password", func() error { _, err := LoadPrivateKey(priv, []byte("nope")); return err }, ErrWrongPassword, "wrong password"},
		{"public as private", func() error { _, err := LoadPrivateKey(pub, []byte(pw)); return err }, ErrInvalidKey, "this is a public key"},
		{"unencrypted private", func() error { _, err := LoadPrivateKey(unencrypted, nil); return err }, ErrInvalidKey, "import-key-pair"},
		{"not PEM", func() error { _, err := LoadPrivateKey([]byte("hello"), nil); return err }, ErrInvalidKey, "not a PEM file"},
		{"private as public", func() error { _, err := LoadPublicKey(priv); return err }, ErrInvalidKey, "this is a private key"},
		{"garbage public", func() error {
			_, err := LoadPublicKey([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
			return err
		}, ErrInvalidKey, "invalid key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error leaks the password: %v", err)
			}
			for _, line := range strings.Split(string(priv), "\n") {
				if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
					t.Errorf("error leaks key material: %v", err)
				}
			}
		})
	}
}

func TestPasswordFromEnv(t *testing.T) {
	unset := func(names ...string) {
		for _, n := range names {
			t.Setenv(n, "") // restores the old value after the test
			os.Unsetenv(n)
		}
	}
	prompt := func(confirm bool) ([]byte, error) {
		if confirm {
			return []byte("typed-twice"), nil
		}
		return []byte("typed"), nil
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		prompt  PasswordFunc
		confirm bool
		want    string
		wantErr error
	}{
		{"ferry wins", map[string]string{EnvPassword: "f", EnvCosignPassword: "c"}, nil, false, "f", nil},
		{"cosign fallback", map[string]string{EnvCosignPassword: "c"}, nil, false, "c", nil},
		{"set but empty", map[string]string{EnvPassword: ""}, prompt, false, "", nil},
		{"prompt", nil, prompt, false, "typed", nil},
		{"prompt confirms new key", nil, prompt, true, "typed-twice", nil},
		{"no way to ask", nil, nil, false, "", ErrNoPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unset(EnvPassword, EnvCosignPassword)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := ReadPassword(tc.prompt, tc.confirm)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Errorf("password = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPolicyFromFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKeyPair([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, dir, "good.pub", pub)
	privPath := writeFile(t, dir, "cosign.key", priv)
	junk := writeFile(t, dir, "junk.pub", []byte("not a key"))
	missing := filepath.Join(dir, "missing.pub")
	id := Identity{Issuer: "https://token.actions.githubusercontent.com", SubjectRegexp: `^https://github.com/ferry-wasm/`}

	for _, tc := range []struct {
		name    string
		paths   []string
		ids     []Identity
		wantErr error
		msgs    []string
		keys    []string
	}{
		{name: "one key", paths: []string{good}, keys: []string{good}},
		{name: "identity only", ids: []Identity{id}},
		{name: "nothing", wantErr: ErrEmptyPolicy},
		{name: "every bad file named", paths: []string{good, missing, privPath, junk}, wantErr: ErrInvalidKey,
			msgs: []string{missing + ": no such file or directory", privPath + ": invalid key: this is a private key", junk + ": invalid key: not a PEM file"}},
		{name: "identity without subject", ids: []Identity{{Issuer: "x"}}, wantErr: ErrInvalidKey, msgs: []string{"needs a subject"}},
		{name: "identity with both", ids: []Identity{{Issuer: "x", IssuerRegexp: "x", Subject: "s"}}, wantErr: ErrInvalidKey, msgs: []string{"not both"}},
		{name: "bad regexp", ids: []Identity{{Issuer: "x", SubjectRegexp: "("}}, wantErr: ErrInvalidKey, msgs: []string{"missing closing )"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PolicyFromFiles(tc.paths, tc.ids...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			for _, m := range tc.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %v\nwant it to mention %q", err, m)
				}
			}
			var names []string
			for _, k := range p.Keys {
				names = append(names, k.Name)
			}
			if d := cmp.Diff(tc.keys, names); d != "" && err == nil {
				t.Errorf("keys (-want +got):\n%s", d)
			}
		})
	}
}
