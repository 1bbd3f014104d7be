package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// Bounds of request bodies.
const (
	maxEnrollBody = 64 << 10
	maxStatusBody = 1 << 20
	maxApps       = 256
)

// Handler returns the device API: POST api.PathEnroll, GET desired and PUT
// status under /v1/devices/{id}/. Every error answer is an api.ErrorBody.
// Serve it with no WriteTimeout, or one longer than api.MaxWait, so that a
// long-poll can end with its answer; and over TLS unless on loopback.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathEnroll, s.enroll)
	mux.HandleFunc("GET /v1/devices/{id}/desired", s.desired)
	mux.HandleFunc("PUT /v1/devices/{id}/status", s.status)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, api.CodeNotFound, "no such path or method in the device API")
	})
	return mux
}

func writeError(w http.ResponseWriter, code int, apiCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry-fleet"`)
	}
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: msg, Code: apiCode})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decode reads a bounded JSON body into v; false means it answered 400.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		msg := "The request body is not valid JSON."
		if errors.As(err, &mbe) {
			msg = fmt.Sprintf("The request body is larger than %d bytes.", limit)
		}
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, msg)
		return false
	}
	return true
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req api.EnrollRequest
	if !decode(w, r, maxEnrollBody, &req) {
		return
	}
	if err := checkLabels(req.Labels); err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, err.Error())
		return
	}
	if len(req.Name) > 253 {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, "The device name is longer than 253 bytes.")
		return
	}
	cred, err := randomSecret(credentialPrefix)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "The server could not make a credential.")
		return
	}
	id, err := newID(req.Name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "The server could not make a device ID.")
		return
	}

	// Check and use the token, durably, before the device exists.
	s.tokenMu.Lock()
	now := s.now().Round(0)
	hash := hashSecret(req.Token)
	s.mu.Lock()
	var tok *tokenRecord
	for _, t := range s.tokens {
		if t.Hash == hash {
			tok = t
			break
		}
	}
	why := ""
	switch {
	case req.Token == "" || tok == nil:
		why = "The enrollment token is unknown."
	case !tok.Revoked.IsZero():
		why = "The enrollment token was revoked."
	case !tok.Expires.IsZero() && !now.Before(tok.Expires):
		why = "The enrollment token has expired."
	case tok.MaxUses > 0 && tok.Uses >= tok.MaxUses:
		why = "The enrollment token has been used as many times as it allows."
	}
	if why != "" {
		s.mu.Unlock()
		s.tokenMu.Unlock()
		writeError(w, http.StatusUnauthorized, api.CodeBadToken, why)
		return
	}
	tok.Uses++
	labels := maps.Clone(req.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, tok.Labels)
	tokID := tok.ID
	s.mu.Unlock()
	err = s.saveTokens()
	if err != nil {
		s.mu.Lock()
		tok.Uses--
		s.mu.Unlock()
	}
	s.tokenMu.Unlock()
	if err != nil {
		s.log.Error("fleet store", "err", err)
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "The server could not record the enrollment.")
		return
	}

	d := newDevice(deviceRecord{
		Version: storeVersion, ID: id, Name: req.Name, Labels: labels, CredHash: hashSecret(cred),
		TokenID: tokID, Enrolled: now, LastSeen: now, Info: req.Info,
	})
	s.mu.Lock()
	for s.devices[id] != nil { // 32 random bits per name: rare, but never overwrite
		s.mu.Unlock()
		if id, err = newID(req.Name); err != nil {
			writeError(w, http.StatusInternalServerError, api.CodeInternal, "The server could not make a device ID.")
			return
		}
		s.mu.Lock()
	}
	d.rec.ID = id
	s.devices[id] = d
	s.mu.Unlock()
	if err := s.saveDevice(d); err != nil {
		s.mu.Lock()
		delete(s.devices, id)
		s.mu.Unlock()
		s.log.Error("fleet store", "err", err)
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "The server could not record the enrollment.")
		return
	}
	s.mu.Lock()
	s.creds[d.rec.CredHash] = id
	s.mu.Unlock()
	s.log.Info("fleet device enrolled", "device", id, "token_id", tokID, "arch", req.Info.Arch)
	s.notifySubscribers()
	writeJSON(w, http.StatusOK, api.EnrollResponse{DeviceID: id, Credential: cred, Labels: labels})
}

// authorize checks the bearer credential against the path's device ID and
// returns the device, or answers 401/403 and returns nil.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) *device {
	h := r.Header.Get("Authorization")
	cred, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || cred == "" {
		writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, "The request has no bearer credential.")
		return nil
	}
	hash := hashSecret(cred)
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.creds[hash]
	if !ok {
		writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, "The credential is unknown or revoked.")
		return nil
	}
	if id != r.PathValue("id") {
		writeError(w, http.StatusForbidden, api.CodeForbidden, "The credential belongs to another device.")
		return nil
	}
	d := s.devices[id]
	d.rec.LastSeen = s.now().Round(0)
	return d
}

// parseWait reads ?wait: a Go duration ("30s") or seconds ("30"), clamped
// to api.MaxWait. Absent means 0.
func parseWait(q string) (time.Duration, error) {
	if q == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(q)
	if err != nil {
		n, err2 := strconv.ParseFloat(q, 64)
		if err2 != nil {
			return 0, err
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < 0 {
		return 0, errors.New("negative wait")
	}
	return min(d, api.MaxWait), nil
}

// etagMatches reports whether an If-None-Match header names version.
func etagMatches(header, version string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, "W/")
		if part == `"`+version+`"` || part == "*" {
			return true
		}
	}
	return false
}

func (s *Server) desired(w http.ResponseWriter, r *http.Request) {
	d := s.authorize(w, r)
	if d == nil {
		return
	}
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, `The wait parameter is not a duration ("30s").`)
		return
	}
	inm := r.Header.Get("If-None-Match")
	var timer <-chan time.Time
	for {
		s.mu.Lock()
		if !d.rec.Revoked.IsZero() {
			s.mu.Unlock()
			writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, "The credential is unknown or revoked.")
			return
		}
		version, changed := d.version, d.changed
		if inm == "" || !etagMatches(inm, version) {
			des := d.desiredLocked()
			s.mu.Unlock()
			w.Header().Set("ETag", `"`+version+`"`)
			writeJSON(w, http.StatusOK, des)
			return
		}
		s.mu.Unlock()
		if wait <= 0 {
			w.Header().Set("ETag", `"`+version+`"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-changed:
		case <-timer:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

var validPhases = map[string]bool{
	api.PhaseServing: true, api.PhaseUpdating: true, api.PhaseUnhealthy: true,
	api.PhaseRolledBack: true, api.PhaseFailed: true,
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	d := s.authorize(w, r)
	if d == nil {
		return
	}
	var rep api.StatusReport
	if !decode(w, r, maxStatusBody, &rep) {
		return
	}
	if len(rep.Apps) > maxApps {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("The report has %d apps (at most %d).", len(rep.Apps), maxApps))
		return
	}
	for _, a := range rep.Apps {
		if a.Name == "" || !validPhases[a.Phase] {
			writeError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("App %q has an empty name or an unknown phase %q.", a.Name, a.Phase))
			return
		}
	}
	s.mu.Lock()
	if !d.rec.Revoked.IsZero() {
		s.mu.Unlock()
		writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, "The credential is unknown or revoked.")
		return
	}
	now := s.now().Round(0)
	d.rec.Status, d.rec.Info, d.rec.LastReport, d.rec.LastSeen = &rep, rep.Info, now, now
	s.mu.Unlock()
	if err := s.saveDevice(d); err != nil {
		s.log.Error("fleet store", "err", err)
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "The server could not record the report.")
		return
	}
	s.notifySubscribers()
	w.WriteHeader(http.StatusNoContent)
}
