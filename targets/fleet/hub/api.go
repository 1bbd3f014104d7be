package hub

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/server"
)

// TokenRequest is the body of POST /v1/fleet/tokens.
type TokenRequest struct {
	// TTL is how long the token may be used, a Go duration ("1h"); empty
	// means forever.
	TTL string `json:"ttl,omitempty"`
	// Uses is how many devices may enroll with it; 0 means no limit.
	Uses int `json:"uses,omitempty"`
	// Labels are given to every device that enrolls with it.
	Labels map[string]string `json:"labels,omitempty"`
}

// CreatedToken is the answer to POST /v1/fleet/tokens: the token's
// description and, this once, its secret.
type CreatedToken struct {
	Token  server.Token `json:"token"`
	Secret string       `json:"secret"`
}

// AbortRequest is the optional body of POST .../abort.
type AbortRequest struct {
	// Reason is shown in the rollout's status.
	Reason string `json:"reason,omitempty"`
}

type errorBody struct {
	Error string `json:"error"`
}

// Routes registers the admin API (see the package documentation) on mux.
// The caller authenticates every request before mux sees it.
// While Options.Leading reports false, every route answers 503 with
// Retry-After: a follower's inventory and rollouts are not the fleet's.
func (h *Hub) Routes(mux *httproute.Mux) {
	h.routes(&gatedMux{mux: mux, h: h})
}

// gatedMux registers handlers behind Hub.leaderOnly.
type gatedMux struct {
	mux *httproute.Mux
	h   *Hub
}

func (g *gatedMux) HandleFunc(pattern string, fn func(http.ResponseWriter, *http.Request)) {
	g.mux.Handle(pattern, g.h.leaderOnly(http.HandlerFunc(fn)))
}

func (h *Hub) routes(mux *gatedMux) {
	mux.HandleFunc("POST /v1/fleet/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if !decode(w, r, &req) {
			return
		}
		var o server.TokenOptions
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil || d <= 0 {
				writeJSON(w, http.StatusBadRequest, errorBody{"ttl must be a positive duration such as 1h"})
				return
			}
			o.TTL = d
		}
		o.MaxUses, o.Labels = req.Uses, req.Labels
		tok, secret, err := h.srv.CreateToken(o)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, CreatedToken{Token: tok, Secret: secret})
	})
	mux.HandleFunc("GET /v1/fleet/tokens", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.srv.Tokens())
	})
	mux.HandleFunc("DELETE /v1/fleet/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := h.srv.RevokeToken(r.PathValue("id")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/fleet/devices", func(w http.ResponseWriter, r *http.Request) {
		var sel spec.LabelSelector
		if err := sel.UnmarshalText([]byte(r.URL.Query().Get("selector"))); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{"selector: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, h.srv.Devices(sel.Matches))
	})
	mux.HandleFunc("POST /v1/fleet/devices/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := h.srv.RevokeDevice(r.PathValue("id")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/fleet/rollouts", func(w http.ResponseWriter, r *http.Request) {
		ros, err := h.Rollouts(r.URL.Query().Get("target"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ros)
	})
	mux.HandleFunc("POST /v1/fleet/rollouts/{target}/{app}/{action}", func(w http.ResponseWriter, r *http.Request) {
		c, err := h.Controller(r.PathValue("target"))
		if err != nil {
			writeErr(w, err)
			return
		}
		app := r.PathValue("app")
		switch r.PathValue("action") {
		case "pause":
			err = c.Pause(app)
		case "resume":
			err = c.Resume(app)
		case "abort":
			var req AbortRequest
			if r.ContentLength != 0 && !decode(w, r, &req) {
				return
			}
			err = c.Abort(app, req.Reason)
		default:
			writeJSON(w, http.StatusNotFound, errorBody{"unknown action: want pause, resume or abort"})
			return
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		ro, err := c.Rollout(app)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ro)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"invalid JSON body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, server.ErrNotFound), errors.Is(err, ErrUnknownTarget), errors.Is(err, controller.ErrNoRollout):
		code = http.StatusNotFound
	case errors.Is(err, server.ErrInvalid), errors.Is(err, controller.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, controller.ErrAborted):
		code = http.StatusConflict
	}
	writeJSON(w, code, errorBody{err.Error()})
}
