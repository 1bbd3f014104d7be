package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header of a webhook delivery's signature:
//
//	X-Ferry-Signature: t=1733230000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
//
// t is the Unix time the delivery was signed (every retry is signed
// anew), v1 the hex HMAC-SHA256, keyed with the shared secret, of the
// bytes of t, a '.', and the request body. A receiver recomputes it over
// the raw body (before parsing it), compares in constant time, and
// refuses a t too far from its clock, so that a captured delivery cannot
// be replayed later; Verify does all of it. Several v1 entries may appear
// (one per secret while a secret is rotated); one matching is enough.
const SignatureHeader = "X-Ferry-Signature"

// DefaultTolerance is the largest difference between a delivery's t and
// the receiver's clock that Verify accepts when given zero: 5 minutes.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	// ErrNoSignature: the header is missing or has no t or v1.
	ErrNoSignature = errors.New("notify: no valid signature header")
	// ErrSignatureMismatch: no v1 matches the body and secret.
	ErrSignatureMismatch = errors.New("notify: signature does not match the body")
	// ErrSignatureExpired: t is too far from now (a replay, or a clock
	// that is off).
	ErrSignatureExpired = errors.New("notify: signature timestamp outside the tolerance")
)

// Sign returns the SignatureHeader value of body signed with secret at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header (the SignatureHeader value) against the raw
// request body and the shared secret, at time now. tolerance bounds how
// far t may be from now either way; zero means DefaultTolerance. It
// returns nil when the delivery is authentic and fresh, else an error
// wrapping ErrNoSignature, ErrSignatureMismatch or ErrSignatureExpired.
// A receiver should also drop Event.IDs it has already handled within
// the tolerance.
//
//	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//	if err := notify.Verify(secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 0); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrSignatureMismatch
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, now %s", ErrSignatureExpired, time.Unix(t, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}
