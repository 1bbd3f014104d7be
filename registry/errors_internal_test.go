package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

func TestClassify(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1/v2/")
	resp := func(code int) error { return &errcode.ErrorResponse{Method: "GET", URL: u, StatusCode: code} }
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"not found", fmt.Errorf("x: %w", errdef.ErrNotFound), ErrNotFound},
		{"404", resp(404), ErrNotFound},
		{"401", resp(401), ErrUnauthorized},
		{"403", resp(403), ErrUnauthorized},
		{"429", resp(429), ErrUnavailable},
		{"503", resp(503), ErrUnavailable},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ErrUnavailable},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), ErrUnavailable},
		{"digest", fmt.Errorf("x: %w", content.ErrMismatchedDigest), ErrDigestMismatch},
		{"content length", errors.New(`GET "http://x": mismatch Content-Length`), ErrDigestMismatch},
		{"bad request", resp(400), nil},
		{"canceled", context.Canceled, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("classify lost the cause: %v", got)
			}
			if tc.want == nil {
				if got != tc.err {
					t.Errorf("classify(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.want) {
				t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if Retryable(got) != (tc.want == ErrUnavailable) {
				t.Errorf("Retryable(%v) = %v", got, Retryable(got))
			}
			if again := classify(got); again != got {
				t.Errorf("classify is not idempotent: %v", again)
			}
		})
	}
}

func TestReadVerified(t *testing.T) {
	data := []byte("hello wasm")
	d := digest.FromBytes(data)
	tests := []struct {
		name    string
		body    string
		size    int64
		wantErr error
		wantMsg string
	}{
		{"ok", "hello wasm", 10, nil, ""},
		{"ok unknown size", "hello wasm", -1, nil, ""},
		{"changed", "hello wasM", 10, ErrDigestMismatch, "received content has digest"},
		{"longer", "hello wasm!", 10, ErrDigestMismatch, "received 11 or more bytes, want 10"},
		{"shorter", "hello", 10, ErrDigestMismatch, "received 5 bytes, want 10"},
		{"changed unknown size", "hello", -1, ErrDigestMismatch, "received content has digest"},
		{"too large", strings.Repeat("x", maxManifestBytes+1), -1, ErrInvalidArtifact, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readVerified(strings.NewReader(tc.body), ocispec.Descriptor{Digest: d, Size: tc.size})
			if tc.wantErr == nil {
				if err != nil || string(b) != string(data) {
					t.Fatalf("got %q, %v", b, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

func TestPlainHTTPPolicy(t *testing.T) {
	tests := []struct {
		ref      string
		insecure bool
		want     bool
	}{
		{"127.0.0.1:5000/a", false, true},
		{"localhost:5000/a", false, true},
		{"[::1]:5000/a", false, true},
		{"ghcr.io/a", false, false},
		{"10.1.2.3:5000/a", false, false},
		{"registry.lan:5000/a", true, true},
	}
	for _, tc := range tests {
		c, err := New(Options{Insecure: tc.insecure, NoDockerConfig: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		repo, err := c.repository(r)
		if err != nil {
			t.Fatal(err)
		}
		if repo.PlainHTTP != tc.want || c.PlainHTTP(r.Registry) != tc.want {
			t.Errorf("%s insecure=%v: plain HTTP = %v, want %v", tc.ref, tc.insecure, repo.PlainHTTP, tc.want)
		}
	}
}
