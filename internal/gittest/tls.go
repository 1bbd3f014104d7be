package gittest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test: it signs server
// certificates for loopback names. Its key never leaves memory.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA makes a fresh CA named name ("gittest CA" when empty), valid for a
// day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	if name == "" {
		name = "gittest CA"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("gittest: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("gittest: CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("gittest: CA certificate: %v", err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("gittest: serial: %v", err)
	}
	return n
}

// PEM returns the CA's certificate in PEM form.
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// WriteFile writes the CA's certificate (PEM) to a file in a temporary
// directory and returns its path.
func (ca *CA) WriteFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ServerCert returns a server certificate signed by the CA for 127.0.0.1,
// ::1 and localhost.
func (ca *CA) ServerCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("gittest: server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("gittest: server certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

// CAFile returns the path of a PEM file holding the certificate of the CA
// that signed the server's certificate; the server's own git commands
// (clones, pushes) trust it. It fails the test for a server without TLS.
func (s *Server) CAFile() string {
	s.t.Helper()
	if s.caFile == "" {
		s.t.Fatal("gittest: CAFile of a server without TLS (set Options.TLS)")
	}
	return s.caFile
}

// setupTLS makes s serve https with a certificate of ca (a fresh CA when
// nil) and configures the server's git HOME to trust it.
func (s *Server) setupTLS(ca *CA) *tls.Config {
	s.t.Helper()
	if ca == nil {
		ca = NewCA(s.t, "")
	}
	s.caFile = filepath.Join(s.home, "ca.pem")
	if err := os.WriteFile(s.caFile, ca.pem, 0o644); err != nil {
		s.t.Fatal(err)
	}
	Git(s.t, s.home, s.home, "config", "--global", "http.sslCAInfo", s.caFile)
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{ca.ServerCert(s.t)}}
}

// String names the CA (for messages).
func (ca *CA) String() string { return fmt.Sprintf("CA %q", ca.cert.Subject.CommonName) }
