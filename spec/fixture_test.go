package spec

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// fixtureRepo builds the spec directory the invalid specs and the fuzz
// target are loaded against, in a fresh temporary directory:
//
//	outside.wasm           a file outside the spec directory
//	repo/hello.wasm        a Wasm file
//	repo/api/main.go       a Go package
//	repo/tools/            a directory (build workdir)
//	repo/static/index.html a static file
//	repo/cosign.pub        a PEM public key
//	repo/not-a-key.pub     a file that is not a key
//	repo/escape.wasm       a symlink to ../outside.wasm
//
// and returns the path of repo.
func fixtureRepo(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	files := map[string][]byte{
		"outside.wasm":           wasmHeader,
		"repo/hello.wasm":        wasmHeader,
		"repo/api/main.go":       []byte("package main\n\nfunc main() {}\n"),
		"repo/tools/.keep":       nil,
		"repo/static/index.html": []byte("<p>hi</p>\n"),
		"repo/cosign.pub":        publicKeyPEM(t),
		"repo/keys/cosign.pub":   publicKeyPEM(t),
		"repo/not-a-key.pub":     []byte("hello\n"),
	}
	for name, b := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join("..", "outside.wasm"), filepath.Join(repo, "escape.wasm")); err != nil {
		t.Fatal(err)
	}
	return repo
}

// wasmHeader is the smallest valid Wasm module: magic and version.
var wasmHeader = []byte("\x00asm\x01\x00\x00\x00")

func publicKeyPEM(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
