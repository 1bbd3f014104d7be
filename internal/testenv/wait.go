package testenv

import (
	"net/http"
	"testing"
	"time"
)

// Within returns what ch yields, failing the test when it yields nothing
// for a minute: a guard against a hang, not a timing assertion.
func Within[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("still waiting after a minute for %s", what)
	}
	var zero T
	return zero
}

// RoundTripFunc is an http.RoundTripper from a function (to watch or wrap
// the requests of a real client).
type RoundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f RoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
