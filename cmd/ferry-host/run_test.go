package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// certs is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type certs struct {
	ca                    *x509.CertPool
	caFile                string
	serverCert, serverKey string
	client                tls.Certificate
}

func makeCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	c := certs{ca: x509.NewCertPool(), caFile: filepath.Join(dir, "ca.pem"),
		serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server.key")}
	c.ca.AddCert(caCert)
	os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	sc, sk := leaf(2, x509.ExtKeyUsageServerAuth)
	os.WriteFile(c.serverCert, sc, 0o644)
	os.WriteFile(c.serverKey, sk, 0o600)
	cc, ck := leaf(3, x509.ExtKeyUsageClientAuth)
	if c.client, err = tls.X509KeyPair(cc, ck); err != nil {
		t.Fatal(err)
	}
	return c
}

// runInProcess starts run() in a goroutine and waits for its serving line.
func runInProcess(t *testing.T, args []string, env map[string]string) (appsURL, ctlURL string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testenv.Buffer{}, &testenv.Buffer{}
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, func(k string) string { return env[k] }, stdout, stderr) }()
	deadline := time.Now().Add(time.Minute)
	for {
		if m := servingRE.FindStringSubmatch(strings.TrimSpace(stdout.String())); m != nil {
			appsURL, ctlURL = m[1], m[2]
			break
		}
		select {
		case c := <-code:
			t.Fatalf("run exited with %d:\n%s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no serving line:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() int {
		stopped = true
		cancel()
		return <-code
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return appsURL, ctlURL, stop
}

// TestControlOverMutualTLS: with --tls-cert/--tls-key/--client-ca the
// control API is HTTPS and refuses clients without a certificate from the
// CA; with one (and the token) a deploy goes through.
func TestControlOverMutualTLS(t *testing.T) {
	c := makeCerts(t)
	_, ref := publishHello(t, "tls-app")
	appsURL, ctlURL, stop := runInProcess(t, []string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--trust-key", trustKeyFile(t), "--token-env", "TOK",
		"--tls-cert", c.serverCert, "--tls-key", c.serverKey, "--client-ca", c.caFile}, map[string]string{"TOK": testToken})
	if !strings.HasPrefix(ctlURL, "https://127.0.0.1:") {
		t.Fatalf("control URL %q", ctlURL)
	}
	ctx := context.Background()
	_, digest, _ := strings.Cut(ref, "@")
	want := targets.DesiredApp{Name: "tls-app", Ref: ref, Digest: digest}

	noCert, _ := driver.NewClient(ctlURL, testToken, driver.ClientOptions{TLS: &tls.Config{RootCAs: c.ca}})
	if _, err := noCert.Put(ctx, want); !errors.Is(err, targets.ErrUnavailable) {
		t.Fatalf("put without client certificate: %v", err)
	}
	withCert, _ := driver.NewClient(ctlURL, testToken, driver.ClientOptions{TLS: &tls.Config{RootCAs: c.ca, Certificates: []tls.Certificate{c.client}}})
	if _, err := withCert.Put(ctx, want); err != nil {
		t.Fatalf("put over mTLS: %v", err)
	}
	wantHello(t, appsURL, "tls-app.localhost")
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestInsecureSkipVerifyWarns: without trust keys the host only starts with
// --insecure-skip-verify, and then says so loudly.
func TestInsecureSkipVerifyWarns(t *testing.T) {
	stderr := &testenv.Buffer{}
	code := run(context.Background(), []string{"--state-dir", t.TempDir()}, func(string) string { return testToken }, &testenv.Buffer{}, stderr)
	if code != 2 || !strings.Contains(stderr.String(), "--trust-key") {
		t.Fatalf("without keys: exit %d, %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--state-dir", t.TempDir(), "--insecure-skip-verify", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"},
			func(string) string { return testToken }, out, stderr)
	}()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "serving apps") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not serving:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if c := <-done; c != 0 {
		t.Fatalf("exit %d", c)
	}
	if !strings.Contains(stderr.String(), "SIGNATURE VERIFICATION IS OFF") {
		t.Fatalf("no warning:\n%s", stderr)
	}
}

// TestShutdownDrains: a request in flight when the host is told to stop
// still gets its answer (here the 504 of a guest that loops until its
// deadline), and the host then exits 0.
func TestShutdownDrains(t *testing.T) {
	loop, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "targets", "host", "testdata", "loop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	_, ref := publishApp(t, "slow", loop, func(c *deploy.Component) {
		c.Health = nil
		c.Limits.Timeout = deploy.Duration(1500 * time.Millisecond)
	})
	appsURL, ctlURL, stop := runInProcess(t, []string{"--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--trust-key", trustKeyFile(t)}, map[string]string{"FERRY_HOST_TOKEN": testToken})
	c, _ := driver.NewClient(ctlURL, testToken, driver.ClientOptions{})
	_, digest, _ := strings.Cut(ref, "@")
	if _, err := c.Put(context.Background(), targets.DesiredApp{Name: "slow", Ref: ref, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code int
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, appsURL+"/", nil)
		req.Host = "slow.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		resp.Body.Close()
		got <- answer{code: resp.StatusCode}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in the guest now
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	a := <-got
	if a.err != nil || a.code != http.StatusGatewayTimeout {
		t.Fatalf("in-flight request: %d %v, want its 504", a.code, a.err)
	}
}
