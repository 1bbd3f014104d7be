package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// secretHashPrefix starts every secret hash; it names the scheme.
const secretHashPrefix = "hmac-sha256:"

// SecretHashKey derives the key of the secret hashes (AppInfo.SecretHashes)
// from the control API's bearer token: the host and every client holding
// the token compute the same hashes, and nobody without it can test a guess
// of a value against a hash (in a plan file, a log, an AppInfo). A new token
// changes every hash; the next plan then updates each app with secrets once,
// with the same values.
func SecretHashKey(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("ferry-host secret hashes v1"))
	return m.Sum(nil)
}

// SecretHashes returns, for each secret, HMAC-SHA256(key, app NUL name NUL
// value) in hex after "hmac-sha256:". The app and variable names are in
// the message, so equal values of different variables or apps hash apart.
// The result is never nil.
func SecretHashes(key []byte, app string, secrets map[string]string) map[string]string {
	out := make(map[string]string, len(secrets))
	for name, v := range secrets {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(app))
		m.Write([]byte{0})
		m.Write([]byte(name))
		m.Write([]byte{0})
		m.Write([]byte(v))
		out[name] = secretHashPrefix + hex.EncodeToString(m.Sum(nil))
	}
	return out
}
