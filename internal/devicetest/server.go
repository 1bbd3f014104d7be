// Package devicetest is a minimal fleet device server for tests: the
// device protocol of package api implemented faithfully (enrollment by
// token, per-device bearer credentials with 401 and 403, versioned desired
// state with ETag / If-None-Match long-polls answering 304 after the wait,
// status reports), with one fleet-wide desired state the test sets. It is
// the other side of targets/fleet/device in that package's tests and in
// cmd/ferry-host's, while the real server lives elsewhere.
//
// It is for tests only.
package devicetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// Device is what the server knows of one enrolled device.
type Device struct {
	ID         string
	Credential string
	Labels     map[string]string
	Info       api.DeviceInfo
	// Reports are the status reports the device sent, oldest first.
	Reports []api.StatusReport
	// Polls counts its GETs of desired state.
	Polls int
}

// Server is the test device server. Its methods are safe for concurrent
// use.
type Server struct {
	tb  testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	tokens  map[string]int // token -> uses left
	devices map[string]*Device
	byCred  map[string]string // credential -> device ID
	desired api.Desired
	changed chan struct{} // closed and replaced on every change
	enrolls int
}

// New starts a plain-HTTP server on 127.0.0.1 that accepts each of
// tokens for one enrollment each. It stops when the test ends.
func New(tb testing.TB, tokens ...string) *Server {
	tb.Helper()
	return start(tb, false, tokens)
}

// NewTLS is New over HTTPS, with a certificate for 127.0.0.1 signed by a
// test CA (CAFile writes it for a device's CA file).
func NewTLS(tb testing.TB, tokens ...string) *Server {
	tb.Helper()
	return start(tb, true, tokens)
}

// CAFile writes the PEM certificate an HTTPS server (NewTLS) presents to a
// file in a temporary directory and returns its path.
func (s *Server) CAFile() string {
	s.tb.Helper()
	p := filepath.Join(s.tb.TempDir(), "fleet-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(p, pemBytes, 0o644); err != nil {
		s.tb.Fatal(err)
	}
	return p
}

func start(tb testing.TB, useTLS bool, tokens []string) *Server {
	s := &Server{tb: tb, tokens: map[string]int{}, devices: map[string]*Device{}, byCred: map[string]string{},
		desired: api.Desired{Version: "0", Apps: []api.DesiredApp{}}, changed: make(chan struct{})}
	for _, t := range tokens {
		s.tokens[t] = 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathEnroll, s.enroll)
	mux.HandleFunc("GET /v1/devices/{id}/desired", s.getDesired)
	mux.HandleFunc("PUT /v1/devices/{id}/status", s.putStatus)
	if useTLS {
		s.srv = httptest.NewTLSServer(mux)
	} else {
		s.srv = httptest.NewServer(mux)
	}
	tb.Cleanup(s.Close)
	return s
}

// URL is the server's base URL (http://127.0.0.1:PORT).
func (s *Server) URL() string { return s.srv.URL }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.srv.Listener.Addr().String() }

// Close stops the server; open long-polls end at once.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetDesired makes apps the desired state of every device, under a new
// version, and wakes the long-polls. It returns the version.
func (s *Server) SetDesired(apps ...api.DesiredApp) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := strconv.Atoi(s.desired.Version)
	s.desired = api.Desired{Version: strconv.Itoa(n + 1), Apps: append([]api.DesiredApp{}, apps...)}
	close(s.changed)
	s.changed = make(chan struct{})
	return s.desired.Version
}

// Devices returns a copy of every enrolled device.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		c := *d
		c.Reports = append([]api.StatusReport(nil), d.Reports...)
		out = append(out, c)
	}
	return out
}

// Enrollments counts successful enrollments.
func (s *Server) Enrollments() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enrolls
}

// WaitReport waits up to within for a report of any device that ok
// accepts, and returns it with the device's ID.
func (s *Server) WaitReport(within time.Duration, what string, ok func(api.StatusReport) bool) (string, api.StatusReport) {
	s.tb.Helper()
	deadline := time.Now().Add(within)
	var last api.StatusReport
	for {
		s.mu.Lock()
		ch := s.changed
		for id, d := range s.devices {
			for i := len(d.Reports) - 1; i >= 0; i-- {
				if ok(d.Reports[i]) {
					r := d.Reports[i]
					s.mu.Unlock()
					return id, r
				}
			}
			if len(d.Reports) > 0 {
				last = d.Reports[len(d.Reports)-1]
			}
		}
		s.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			b, _ := json.MarshalIndent(last, "", "  ")
			s.tb.Fatalf("no status report %s within %v; the last one:\n%s", what, within, b)
		}
		select {
		case <-ch:
		case <-time.After(min(left, 200*time.Millisecond)):
		}
	}
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: msg, Code: code}) //nolint:errcheck // the client may be gone
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req api.EnrollRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, api.CodeBadRequest, "The body is not an enrollment request.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens[req.Token] <= 0 {
		s.fail(w, http.StatusUnauthorized, api.CodeBadToken, "The enrollment token is unknown, expired, used up or revoked.")
		return
	}
	s.tokens[req.Token]--
	b := make([]byte, 24)
	rand.Read(b) //nolint:errcheck // never fails
	d := &Device{ID: fmt.Sprintf("dev-%d", len(s.devices)+1), Credential: "fdc_" + hex.EncodeToString(b), Labels: req.Labels, Info: req.Info}
	s.devices[d.ID] = d
	s.byCred[d.Credential] = d.ID
	s.enrolls++
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(api.EnrollResponse{DeviceID: d.ID, Credential: d.Credential, Labels: d.Labels}) //nolint:errcheck // the client may be gone
}

// auth returns the device of the request's credential, after answering
// 401 (none, unknown) or 403 (another device's path) itself.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) *Device {
	cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	id, known := s.byCred[cred]
	if !ok || !known {
		s.fail(w, http.StatusUnauthorized, api.CodeUnauthorized, "No credential, or one this server does not know.")
		return nil
	}
	if id != r.PathValue("id") {
		s.fail(w, http.StatusForbidden, api.CodeForbidden, "This credential belongs to another device.")
		return nil
	}
	return s.devices[id]
}

// Revoke makes device id's credential unknown (401 from now on).
func (s *Server) Revoke(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[id]; d != nil {
		delete(s.byCred, d.Credential)
	}
}

func (s *Server) getDesired(w http.ResponseWriter, r *http.Request) {
	wait := api.DefaultWait
	if q := r.URL.Query().Get("wait"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil || d < 0 {
			s.fail(w, http.StatusBadRequest, api.CodeBadRequest, "wait is not a duration.")
			return
		}
		wait = min(d, api.MaxWait)
	}
	s.mu.Lock()
	d := s.auth(w, r)
	if d == nil {
		s.mu.Unlock()
		return
	}
	d.Polls++
	inm := r.Header.Get("If-None-Match")
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		cur, ch := s.desired, s.changed
		if inm != strconv.Quote(cur.Version) {
			s.mu.Unlock()
			w.Header().Set("ETag", strconv.Quote(cur.Version))
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(cur) //nolint:errcheck // the client may be gone
			return
		}
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-timer.C:
			w.Header().Set("ETag", strconv.Quote(cur.Version))
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) putStatus(w http.ResponseWriter, r *http.Request) {
	var rep api.StatusReport
	s.mu.Lock()
	d := s.auth(w, r)
	s.mu.Unlock()
	if d == nil {
		return
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&rep); err != nil {
		s.fail(w, http.StatusBadRequest, api.CodeBadRequest, "The body is not a status report.")
		return
	}
	s.mu.Lock()
	d.Reports = append(d.Reports, rep)
	d.Info = rep.Info
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
