package control

import (
	"context"
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
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"github.com/ferry-wasm/ferry/targets/host/state"
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
// an error code.
func classify(err error) (int, string) {
	isAny := func(errs ...error) bool {
		for _, e := range errs {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	switch {
	case isAny(errBadRequest, registry.ErrInvalidReference, signer.ErrInvalidReference, state.ErrInvalid):
		return http.StatusBadRequest, api.CodeBadRequest
	case isAny(signer.ErrUnsigned, signer.ErrNoMatchingKey, signer.ErrPayloadMismatch, signer.ErrAnnotationMismatch,
		signer.ErrDigestMismatch, signer.ErrTagMoved, signer.ErrEmptyPolicy, signer.ErrInvalidKey, registry.ErrDigestMismatch):
		return http.StatusForbidden, api.CodeVerification
	case isAny(signer.ErrNotFound, registry.ErrNotFound):
		return http.StatusNotFound, api.CodeArtifactNotFound
	case isAny(host.ErrNotFound):
		return http.StatusNotFound, api.CodeNotFound
	case isAny(host.ErrNoPrevious):
		return http.StatusConflict, api.CodeNoPrevious
	case isAny(errAppMismatch, registry.ErrInvalidArtifact, host.ErrInvalidApp, host.ErrMissingModule,
		host.ErrDigestMismatch, host.ErrMalformedModule, host.ErrImportNotOffered, host.ErrMissingExport,
		host.ErrMissingVariable, host.ErrRouteConflict, host.ErrHealthCheck, host.ErrInstantiate):
		return http.StatusUnprocessableEntity, api.CodeRejected
	case isAny(signer.ErrRegistry, signer.ErrTrustRootUnavailable, registry.ErrUnavailable, registry.ErrUnauthorized):
		return http.StatusBadGateway, api.CodeUnavailable
	case isAny(host.ErrClosed, context.Canceled, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, api.CodeUnavailable
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

// ctlMetrics are the control API's own collectors.
type ctlMetrics struct {
	healthy         *prometheus.GaugeVec
	probeFailures   *prometheus.CounterVec
	healthRollbacks *prometheus.CounterVec
	requests        *prometheus.CounterVec
	deploys         *prometheus.CounterVec
	deploySeconds   prometheus.Histogram
}

func newCtlMetrics() *ctlMetrics {
	return &ctlMetrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_host_app_healthy",
			Help: "1 while the serving version's component passes its health probes after deploy, 0 once it failed failure_threshold in a row.",
		}, []string{"app", "component"}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_health_probe_failures_total",
			Help: "Failed health probes after deploy, by app.",
		}, []string{"app"}),
		healthRollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_health_rollbacks_total",
			Help: "Rollbacks the host made by itself because a version turned unhealthy within its bake.",
		}, []string{"app"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_control_requests_total",
			Help: "Control API requests by operation and HTTP status.",
		}, []string{"op", "code"}),
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_host_control_puts_total",
			Help: "App PUTs by result (ok, or the error code).",
		}, []string{"result"}),
		deploySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ferry_host_control_put_duration_seconds",
			Help:    "Time to verify, pull, deploy and persist an app.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
	}
}

func (m *ctlMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.deploys, m.deploySeconds, m.healthy, m.probeFailures, m.healthRollbacks} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
