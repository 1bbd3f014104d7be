package wasmbin

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and to every decoder of the
// sections it finds: none may panic, sections must tile the input, and
// every error must wrap ErrMalformed.
//
//	go test ./internal/wasmbin -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	f.Add(readModule(f))
	f.Add([]byte(header))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := walk(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}
