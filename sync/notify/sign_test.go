package notify

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"kind":"apply.failed"}`)
	at := time.Unix(1_733_230_000, 0)
	good := Sign(secret, body, at)
	other := Sign([]byte("another-secret-of-16+"), body, at)
	cases := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", secret, good, body, at.Add(time.Minute), nil},
		{"valid, clock behind", secret, good, body, at.Add(-time.Minute), nil},
		{"tampered body", secret, good, []byte(`{"kind":"rollback"}`), at, ErrSignatureMismatch},
		{"wrong secret", []byte("wrong-secret-0123456"), good, body, at, ErrSignatureMismatch},
		{"replayed later", secret, good, body, at.Add(6 * time.Minute), ErrSignatureExpired},
		{"from the future", secret, good, body, at.Add(-6 * time.Minute), ErrSignatureExpired},
		{"no header", secret, "", body, at, ErrNoSignature},
		{"no v1", secret, "t=1733230000", body, at, ErrNoSignature},
		{"garbage", secret, "t=abc,v1=zz", body, at, ErrNoSignature},
		{"rotation: old and new secret", secret, other + "," + strings.Split(good, ",")[1], body, at, nil},
		{"timestamp swapped", secret, "t=1733230001," + strings.Split(good, ",")[1], body, at, ErrSignatureMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.secret, c.header, c.body, c.now, 0)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify(%q) = %v, want %v", c.header, err, c.want)
			}
		})
	}
}

// TestSignFormat pins the header format receivers implement by hand.
func TestSignFormat(t *testing.T) {
	// echo -n '1733230000.{}' | openssl dgst -sha256 -hmac 0123456789abcdef
	got := Sign([]byte("0123456789abcdef"), []byte("{}"), time.Unix(1_733_230_000, 0))
	want := "t=1733230000,v1=" + hexHMAC("0123456789abcdef", "1733230000.{}")
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
