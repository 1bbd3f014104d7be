// Package httproute is an http.ServeMux that remembers the patterns
// registered on it, so that a test can enumerate every endpoint a server
// has (and fail when one has no row in its table).
package httproute

import (
	"net/http"
	"slices"
)

// Mux is an http.ServeMux that records its patterns. Create it with New.
// Register routes before serving; ServeHTTP is then safe for concurrent
// use, like http.ServeMux.
type Mux struct {
	mux      *http.ServeMux
	patterns []string
}

// New returns an empty Mux.
func New() *Mux { return &Mux{mux: http.NewServeMux()} }

// Handle registers h for pattern (http.ServeMux syntax, "GET /v1/x") and
// records the pattern. It panics on a conflicting pattern, as
// http.ServeMux does (a programming error, never input).
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	m.patterns = append(m.patterns, pattern)
}

// HandleFunc is Handle for a function.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// ServeHTTP implements http.Handler.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

// Patterns returns the registered patterns, sorted.
func (m *Mux) Patterns() []string { return slices.Sorted(slices.Values(m.patterns)) }
