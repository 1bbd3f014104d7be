package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/core"
)

// ServeHTTP implements http.Handler: the routes in the package
// documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Handler returns the control API as an http.Handler (the Server itself).
func (s *Server) Handler() http.Handler { return s }

func (s *Server) buildMux() *httproute.Mux {
	m := httproute.New()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	m.Handle("GET /v1/apps", s.route("list", s.handleList))
	m.Handle("GET /v1/apps/{name}", s.route("get", s.handleGet))
	m.Handle("PUT /v1/apps/{name}", s.route("put", s.handlePut))
	m.Handle("DELETE /v1/apps/{name}", s.route("delete", s.handleDelete))
	m.Handle("POST /v1/apps/{name}/rollback", s.route("rollback", s.handleRollback))
	m.Handle("GET /v1/lock", s.route("lock_get", s.handleLockGet))
	m.Handle("POST /v1/lock", s.route("lock", s.handleLockAcquire))
	m.Handle("PUT /v1/lock/{id}", s.route("lock_renew", s.handleLockRenew))
	m.Handle("DELETE /v1/lock/{id}", s.route("lock_release", s.handleLockRelease))
	if s.opts.Metrics != nil {
		m.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.opts.Metrics, promhttp.HandlerOpts{})))
	}
	return m
}

// route wraps an API handler with authentication and metrics.
func (s *Server) route(name string, h func(http.ResponseWriter, *http.Request) int) http.Handler {
	return s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		code := h(w, r)
		s.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
	}))
}

// auth checks the bearer token in constant time.
func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gh := hashToken(got)
		if !ok || subtle.ConstantTimeCompare(gh[:], s.tokenH[:]) != 1 {
			s.metrics.requests.WithLabelValues("unauthorized", "401").Inc()
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "control request refused: bad or missing token",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry-host"`)
			writeError(w, http.StatusUnauthorized, api.CodeUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func hashToken(t string) [32]byte { return sha256.Sum256([]byte("ferry-host-token\x00" + t)) }

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) int {
	return writeJSON(w, http.StatusOK, api.ListResponse{Apps: s.List()})
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) int {
	ai, err := s.Get(r.PathValue("name"))
	if err != nil {
		return s.fail(w, r, err)
	}
	return writeJSON(w, http.StatusOK, ai)
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) (code int) {
	if s.fenced(w, r, &code) {
		return code
	}
	var req api.PutRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// The decoder's message never quotes values, only field names and
		// offsets, so secrets cannot leak through it.
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.fail(w, r, fmt.Errorf("%w: body larger than %d bytes", errBadRequest, mbe.Limit))
		}
		return s.fail(w, r, fmt.Errorf("%w: body is not a api.PutRequest: %s", errBadRequest, jsonReason(err)))
	}
	ai, err := s.Put(r.Context(), r.PathValue("name"), req)
	if err != nil {
		return s.fail(w, r, err)
	}
	return writeJSON(w, http.StatusOK, ai)
}

// jsonReason describes a JSON decoding error without quoting input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case errors.Is(err, io.EOF):
		return "empty body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return err.Error()[len("json: "):]
	}
	return "malformed JSON"
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) (code int) {
	if s.fenced(w, r, &code) {
		return code
	}
	if err := s.Delete(r.Context(), r.PathValue("name")); err != nil {
		return s.fail(w, r, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) (code int) {
	if s.fenced(w, r, &code) {
		return code
	}
	ai, err := s.RollBack(r.Context(), r.PathValue("name"))
	if err != nil {
		return s.fail(w, r, err)
	}
	return writeJSON(w, http.StatusOK, ai)
}

// fail answers with the status and code err maps to, and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) int {
	status, code := classify(err)
	lvl := slog.LevelWarn
	if status >= 500 {
		lvl = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), lvl, "control request failed", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", status), slog.String("error", err.Error()))
	return writeError(w, status, code, err.Error())
}

// classify maps an error of the Server's operations to an HTTP status and
// an error code: the core's classification (core.Classify), with the
// control API's own input errors as 400.
func classify(err error) (int, string) {
	if errors.Is(err, errBadRequest) {
		return http.StatusBadRequest, api.CodeBadRequest
	}
	code, upstream := core.Classify(err)
	switch code {
	case api.CodeBadRequest:
		return http.StatusBadRequest, code
	case api.CodeVerification:
		return http.StatusForbidden, code
	case api.CodeArtifactNotFound, api.CodeNotFound:
		return http.StatusNotFound, code
	case api.CodeNoPrevious:
		return http.StatusConflict, code
	case api.CodeRejected:
		return http.StatusUnprocessableEntity, code
	case api.CodeUnavailable:
		if upstream {
			return http.StatusBadGateway, code
		}
		return http.StatusServiceUnavailable, code
	}
	return http.StatusInternalServerError, api.CodeInternal
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return status
}

func writeError(w http.ResponseWriter, status int, code, msg string) int {
	return writeJSON(w, status, api.ErrorBody{Error: msg, Code: code})
}

// ctlMetrics are the control API's own collectors (the core has its own:
// deploys, health probes).
type ctlMetrics struct {
	requests *prometheus.CounterVec
}

func newCtlMetrics() *ctlMetrics {
	return &ctlMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_control_requests_total",
			Help: "Control API requests by operation and HTTP status.",
		}, []string{"op", "code"}),
	}
}

func (m *ctlMetrics) register(reg prometheus.Registerer) error {
	return reg.Register(m.requests)
}
