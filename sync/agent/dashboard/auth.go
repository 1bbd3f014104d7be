package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// Role is what a session may do.
type Role string

// The roles.
const (
	// RoleViewer may read every view.
	RoleViewer Role = "viewer"
	// RoleOperator may also act: rollback, pin, unpin, sync, and pause,
	// resume or abort fleet rollouts.
	RoleOperator Role = "operator"
)

// cookieName is the session cookie's name.
const cookieName = "ferry_session"

// session is one logged-in browser.
type session struct {
	role    Role
	csrf    string
	expires time.Time
	flash   string // a message shown once on the next page
}

// sessions is the server-side session store: random ids (kept hashed)
// with an absolute expiry. It holds at most max sessions, dropping the one
// that expires first to make room.
type sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	ttl time.Duration
	max int
	now func() time.Time
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, ttl: ttl, max: max, now: now}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// create makes a session of role and returns its id.
func (s *sessions) create(role Role) (string, *session) {
	id := randomToken()
	ses := &session{role: role, csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	for len(s.m) >= s.max {
		var oldest [32]byte
		var t time.Time
		for k, v := range s.m {
			if t.IsZero() || v.expires.Before(t) {
				oldest, t = k, v.expires
			}
		}
		delete(s.m, oldest)
	}
	s.m[hashID(id)] = ses
	return id, ses
}

// get returns a copy of the session id names, if it exists and has not
// expired.
func (s *sessions) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := hashID(id)
	ses, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	if !s.now().Before(ses.expires) {
		delete(s.m, k)
		return session{}, false
	}
	return *ses, true
}

// takeFlash returns the session's flash message and clears it.
func (s *sessions) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ses, ok := s.m[hashID(id)]; ok {
		f := ses.flash
		ses.flash = ""
		return f
	}
	return ""
}

func (s *sessions) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ses, ok := s.m[hashID(id)]; ok {
		ses.flash = msg
	}
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, hashID(id))
}

// tokens checks login tokens in constant time.
type tokens struct {
	operator, viewer [32]byte
	hasOp, hasViewer bool
}

func newTokens(operator, viewer string) tokens {
	return tokens{operator: sha256.Sum256([]byte(operator)), viewer: sha256.Sum256([]byte(viewer)),
		hasOp: operator != "", hasViewer: viewer != ""}
}

// role returns the role tok logs in as, or "" when it is neither token.
// Both comparisons always run, so timing says nothing about which token
// was close.
func (t tokens) role(tok string) Role {
	got := sha256.Sum256([]byte(tok))
	op := subtle.ConstantTimeCompare(got[:], t.operator[:]) == 1 && t.hasOp
	vw := subtle.ConstantTimeCompare(got[:], t.viewer[:]) == 1 && t.hasViewer
	switch {
	case tok == "":
		return ""
	case op:
		return RoleOperator
	case vw:
		return RoleViewer
	}
	return ""
}

// limiter counts failed logins per client address in a sliding window:
// after max failures within window, the address is refused until the
// oldest of them leaves the window. It tracks at most 4096 addresses.
type limiter struct {
	mu     sync.Mutex
	fails  map[string][]time.Time
	max    int
	window time.Duration
	now    func() time.Time
}

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{fails: map[string][]time.Time{}, max: max, window: window, now: now}
}

// clientAddr is the address a request came from, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wait returns how long addr must wait before its next attempt; zero when
// it may try now.
func (l *limiter) wait(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	fs := l.recent(addr, now)
	if len(fs) < l.max {
		return 0
	}
	return fs[0].Add(l.window).Sub(now)
}

// recent drops addr's failures older than the window; l.mu is held.
func (l *limiter) recent(addr string, now time.Time) []time.Time {
	fs := l.fails[addr]
	i := 0
	for i < len(fs) && !now.Before(fs[i].Add(l.window)) {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(l.fails, addr)
	} else {
		l.fails[addr] = fs
	}
	return fs
}

// fail records a failed attempt of addr.
func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if _, ok := l.fails[addr]; !ok && len(l.fails) >= 4096 {
		for a := range l.fails {
			if len(l.recent(a, now)) == 0 {
				continue
			}
		}
		if len(l.fails) >= 4096 {
			for a := range l.fails { // still full: forget one address
				delete(l.fails, a)
				break
			}
		}
	}
	l.fails[addr] = append(l.recent(addr, now), now)
}

// sameToken compares two CSRF tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
