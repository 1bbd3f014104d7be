package control

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ferry-wasm/ferry/targets/host/api"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode"
)

const (
	// maxHolderLen caps api.LockRequest.Holder.
	maxHolderLen = 256
	// endedLeases is how many ended lease ids the host remembers, to answer
	// 410 rather than 404 to a holder that lost its lease.
	endedLeases = 64
)

// leaseTable is the host's apply lock: at most one lease, in memory.
type leaseTable struct {
	now func() time.Time

	mu    sync.Mutex
	cur   *api.Lease
	ttl   time.Duration
	ended map[string]string // lease id -> why it ended
	order []string          // ended ids, oldest first
}

// lockedError: the lock is held by someone else.
type lockedError struct{ lease api.Lease }

func (e *lockedError) Error() string {
	return fmt.Sprintf("the apply lock is held by %q until %s (lease %s)", e.lease.Holder, e.lease.Expires.Format(time.RFC3339), e.lease.ID)
}

// leaseLostError: the lease ended (expired and taken, or released).
type leaseLostError struct{ id, why string }

func (e *leaseLostError) Error() string { return fmt.Sprintf("lease %s was lost: %s", e.id, e.why) }

// errLeaseNotFound: the host never granted the lease (or restarted since).
var errLeaseNotFound = errors.New("no such lease on this host (never granted, or the host restarted since)")

// acquire grants a new lease to holder unless another lease is live. A
// lease past its expiry is replaced, and remembered as lost.
func (l *leaseTable) acquire(holder string, ttl time.Duration) (api.Lease, error) {
	id, err := newLeaseID()
	if err != nil {
		return api.Lease{}, err
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		if now.Before(l.cur.Expires) {
			return api.Lease{}, &lockedError{lease: *l.cur}
		}
		l.end(l.cur.ID, fmt.Sprintf("it expired at %s and was taken by %q", l.cur.Expires.Format(time.RFC3339), holder))
	}
	l.cur = &api.Lease{ID: id, Holder: holder, Acquired: now, Expires: now.Add(ttl), TTL: ttl.String()}
	l.ttl = ttl
	return *l.cur, nil
}

// renew extends lease id by ttl (its own TTL when zero). A lease past its
// expiry that nobody took yet is renewed too: no one held the lock between.
func (l *leaseTable) renew(id string, ttl time.Duration) (api.Lease, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.cur.ID != id {
		if why, ok := l.ended[id]; ok {
			return api.Lease{}, &leaseLostError{id: id, why: why}
		}
		return api.Lease{}, errLeaseNotFound
	}
	if ttl == 0 {
		ttl = l.ttl
	}
	l.ttl = ttl
	l.cur.Expires = now.Add(ttl)
	l.cur.TTL = ttl.String()
	return *l.cur, nil
}

// release ends lease id if it is the current one; any other id is fine.
func (l *leaseTable) release(id string) (api.Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.cur.ID != id {
		return api.Lease{}, false
	}
	was := *l.cur
	l.end(id, "it was released")
	l.cur = nil
	return was, true
}

// fence refuses a lease id that does not hold the lock now. A lease past
// its expiry that nobody took still holds it (as for renew).
func (l *leaseTable) fence(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil && l.cur.ID == id {
		return nil
	}
	why, ok := l.ended[id]
	if !ok {
		why = "the host has no such lease (never granted, or the host restarted since)"
	}
	return &leaseLostError{id: id, why: why}
}

// fenced answers and returns true when a mutating request may not act:
// 410 when r carries a api.LeaseHeader that does not hold the lock, 409
// (code "locked", the holder's lease in the body) when r carries none while
// another client holds the lock. A request without a lease goes through
// only while nobody holds the lock, so single-shot clients keep working on
// an idle host but cannot interleave with a holder's apply.
func (s *Server) fenced(w http.ResponseWriter, r *http.Request, code *int) bool {
	id := r.Header.Get(api.LeaseHeader)
	if id == "" {
		st := s.leases.status()
		if !st.Held {
			return false
		}
		err := &lockedError{lease: *st.Lease}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "control request refused: another client holds the apply lock",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("held_by", st.Lease.Holder))
		*code = writeJSON(w, http.StatusConflict, api.ErrorBody{
			Error: "this request carries no apply lock lease and " + err.Error() + "; wait for it to be released, or take the lock",
			Code:  api.CodeLocked, Lock: st.Lease})
		return true
	}
	err := s.leases.fence(id)
	if err == nil {
		return false
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "control request refused: its apply lock lease is lost",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	*code = writeError(w, http.StatusGone, api.CodeLeaseLost, "this request's apply lock "+err.Error()+"; take the lock again")
	return true
}

// status reports the live lease, if any.
func (l *leaseTable) status() api.LockStatus {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || !now.Before(l.cur.Expires) {
		return api.LockStatus{}
	}
	c := *l.cur
	return api.LockStatus{Held: true, Lease: &c}
}

// end remembers why lease id ended; l.mu is held.
func (l *leaseTable) end(id, why string) {
	if l.ended == nil {
		l.ended = map[string]string{}
	}
	if _, ok := l.ended[id]; !ok {
		l.order = append(l.order, id)
	}
	l.ended[id] = why
	for len(l.order) > endedLeases {
		delete(l.ended, l.order[0])
		l.order = l.order[1:]
	}
}

// newLeaseID returns 128 random bits in hex.
func newLeaseID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("control: lease id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// parseTTL reads api.LockRequest.TTL: empty means api.DefaultLockTTL (or zero when
// keep is set: keep the lease's own TTL); otherwise a Go duration within
// [api.MinLockTTL, api.MaxLockTTL].
func parseTTL(s string, keep bool) (time.Duration, error) {
	if s == "" {
		if keep {
			return 0, nil
		}
		return api.DefaultLockTTL, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: ttl %q is not a duration like \"30s\"", errBadRequest, s)
	}
	if d < api.MinLockTTL || d > api.MaxLockTTL {
		return 0, fmt.Errorf("%w: ttl %s is outside %s..%s", errBadRequest, d, api.MinLockTTL, api.MaxLockTTL)
	}
	return d, nil
}

// checkHolder refuses an empty, overlong or unprintable holder (it goes
// into logs and messages).
func checkHolder(h string) error {
	if h == "" {
		return fmt.Errorf("%w: holder is empty; say who takes the lock (\"ferry apply, pid 42 on build-1\")", errBadRequest)
	}
	if len(h) > maxHolderLen {
		return fmt.Errorf("%w: holder is longer than %d bytes", errBadRequest, maxHolderLen)
	}
	for _, r := range h {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: holder has a control character", errBadRequest)
		}
	}
	return nil
}

// decodeLockRequest reads a api.LockRequest body; an empty body is a zero
// request.
func decodeLockRequest(r *http.Request) (api.LockRequest, error) {
	var req api.LockRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, fmt.Errorf("%w: body larger than %d bytes", errBadRequest, mbe.Limit)
		}
		return req, fmt.Errorf("%w: body is not a api.LockRequest: %s", errBadRequest, jsonReason(err))
	}
	return req, nil
}

// LockStatus returns the host's apply lock as GET /v1/lock does.
func (s *Server) LockStatus() api.LockStatus { return s.leases.status() }

func (s *Server) handleLockGet(w http.ResponseWriter, r *http.Request) int {
	return writeJSON(w, http.StatusOK, s.leases.status())
}

func (s *Server) handleLockAcquire(w http.ResponseWriter, r *http.Request) int {
	req, err := decodeLockRequest(r)
	if err == nil {
		err = checkHolder(req.Holder)
	}
	var ttl time.Duration
	if err == nil {
		ttl, err = parseTTL(req.TTL, false)
	}
	if err != nil {
		return s.fail(w, r, err)
	}
	lease, err := s.leases.acquire(req.Holder, ttl)
	var le *lockedError
	if errors.As(err, &le) {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "apply lock busy", slog.String("holder", req.Holder),
			slog.String("held_by", le.lease.Holder), slog.Time("expires", le.lease.Expires))
		return writeJSON(w, http.StatusConflict, api.ErrorBody{Error: err.Error(), Code: api.CodeLocked, Lock: &le.lease})
	}
	if err != nil {
		return s.fail(w, r, err)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "apply lock acquired", slog.String("holder", lease.Holder),
		slog.String("lease", lease.ID), slog.String("ttl", lease.TTL))
	return writeJSON(w, http.StatusOK, lease)
}

func (s *Server) handleLockRenew(w http.ResponseWriter, r *http.Request) int {
	req, err := decodeLockRequest(r)
	var ttl time.Duration
	if err == nil {
		ttl, err = parseTTL(req.TTL, true)
	}
	if err != nil {
		return s.fail(w, r, err)
	}
	id := r.PathValue("id")
	lease, err := s.leases.renew(id, ttl)
	var lost *leaseLostError
	switch {
	case errors.As(err, &lost):
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "apply lock renewal refused: lease lost", slog.String("lease", id), slog.String("why", lost.why))
		return writeError(w, http.StatusGone, api.CodeLeaseLost, err.Error())
	case errors.Is(err, errLeaseNotFound):
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "apply lock renewal refused: unknown lease", slog.String("lease", id))
		return writeError(w, http.StatusNotFound, api.CodeLeaseNotFound, fmt.Sprintf("lease %s: %s", id, err))
	case err != nil:
		return s.fail(w, r, err)
	}
	return writeJSON(w, http.StatusOK, lease)
}

func (s *Server) handleLockRelease(w http.ResponseWriter, r *http.Request) int {
	if was, ok := s.leases.release(r.PathValue("id")); ok {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "apply lock released", slog.String("holder", was.Holder), slog.String("lease", was.ID))
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}
