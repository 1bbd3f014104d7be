package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-wasm/ferry/internal/httproute"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/history"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Source is what the dashboard reads and does on the agent: an
// *agent.Agent. Every method is called from request goroutines.
type Source interface {
	Status() agent.Status
	Rounds(limit int) ([]history.Round, error)
	History(app string, limit int) ([]history.AppRecord, error)
	Pin(app, digest string) (history.Pin, error)
	Unpin(app string) error
	Sync()
	Subscribe(buffer int) *agent.Subscription
}

var _ Source = (*agent.Agent)(nil)

// Options configure a Dashboard. Source and OperatorToken are required;
// the zero value of every other field is its default.
type Options struct {
	// Source is the agent.
	Source Source
	// Fleet is the fleet hub; nil hides the fleet views.
	Fleet Fleet
	// OperatorToken logs in with the operator role: the status API's
	// bearer token.
	OperatorToken string
	// ViewerToken logs in with the viewer role (read-only). Empty means
	// there is no viewer login.
	ViewerToken string
	// SessionTTL is how long a session lasts after login. Zero means 12
	// hours.
	SessionTTL time.Duration
	// MaxSessions caps the sessions kept; the one expiring first is
	// dropped to make room. Zero means 1000.
	MaxSessions int
	// LoginAttempts is how many failed logins a client address may make
	// per minute before it is refused until the minute passes. Zero means
	// 5.
	LoginAttempts int
	// PageSize is the rows per page of the long lists. Zero means 50.
	PageSize int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives logins, refusals and actions (never a token). Nil
	// discards.
	Logger *slog.Logger
}

// Dashboard serves the web UI. Create it with New; it is an http.Handler
// for / and /ui/... and safe for concurrent use. Close ends the live event
// streams (call it when the server shuts down, or they hold it open).
type Dashboard struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	css      template.CSS
	csp      string
	sess     *sessions
	tok      tokens
	lim      *limiter
	mux      *httproute.Mux
	done     chan struct{}
	doneOnce sync.Once
}

// New checks opts and returns the dashboard.
func New(opts Options) (*Dashboard, error) {
	if opts.Source == nil {
		return nil, errors.New("dashboard: no source")
	}
	if opts.OperatorToken == "" {
		return nil, errors.New("dashboard: no operator token (the status API's token)")
	}
	if opts.ViewerToken == opts.OperatorToken {
		return nil, errors.New("dashboard: the viewer token must differ from the operator token")
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 1000
	}
	if opts.LoginAttempts <= 0 {
		opts.LoginAttempts = 5
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dashboard{opts: opts, now: opts.Now, log: opts.Logger, done: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	css, err := fs.ReadFile(staticFS, "static/style.css")
	if err != nil {
		return nil, err
	}
	d.css = template.CSS(css) //nolint:gosec // our own embedded file
	sum := sha256.Sum256(css)
	// The stylesheet is inline (the login page has no session to fetch
	// it with); the policy names its hash.
	d.csp = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; style-src 'sha256-" +
		base64.StdEncoding.EncodeToString(sum[:]) + "'"
	base, err := template.New("").Funcs(funcs(d.now)).Funcs(template.FuncMap{"css": func() template.CSS { return d.css }}).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	d.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: templates: %w", err)
		}
		d.pages[name] = t
	}
	d.sess = newSessions(opts.SessionTTL, opts.MaxSessions, opts.Now)
	d.tok = newTokens(opts.OperatorToken, opts.ViewerToken)
	d.lim = newLimiter(opts.LoginAttempts, time.Minute, opts.Now)
	d.routes()
	return d, nil
}

// pageNames are the pages in templates/, each defining "content".
var pageNames = []string{"login", "error", "apps", "app", "targets", "fleet", "devices", "history"}

// Close ends every live event stream; pages keep working.
func (d *Dashboard) Close() { d.doneOnce.Do(func() { close(d.done) }) }

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", d.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	d.mux.ServeHTTP(w, r)
}

// Routes returns the route patterns the dashboard serves (http.ServeMux
// syntax), sorted, without the catch-all "/" that answers 404 (or sends to
// the login form): the list an endpoint table must cover.
func (d *Dashboard) Routes() []string {
	return slices.DeleteFunc(d.mux.Patterns(), func(p string) bool { return p == "/" })
}

func (d *Dashboard) routes() {
	m := httproute.New()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusSeeOther) })
	m.HandleFunc("GET /ui/login", d.loginPage)
	m.HandleFunc("POST /ui/login", d.login)
	m.Handle("POST /ui/logout", d.action(RoleViewer, d.logout))
	m.Handle("GET /ui/{$}", d.page(d.appsView))
	m.Handle("GET /ui/apps/{app}", d.page(d.appView))
	m.Handle("GET /ui/targets", d.page(d.targetsView))
	m.Handle("GET /ui/fleet", d.page(d.fleetView))
	m.Handle("GET /ui/fleet/devices", d.page(d.devicesView))
	m.Handle("GET /ui/history", d.page(d.historyView))
	m.Handle("GET /ui/events", d.authed(d.events))
	m.Handle("GET /ui/static/app.js", d.authed(func(w http.ResponseWriter, r *http.Request, _ string, _ session) {
		b, _ := fs.ReadFile(staticFS, "static/app.js")
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(b) //nolint:errcheck // the client went away
	}))
	m.Handle("POST /ui/apps/{app}/rollback", d.action(RoleOperator, d.rollback))
	m.Handle("POST /ui/apps/{app}/unpin", d.action(RoleOperator, d.unpin))
	m.Handle("POST /ui/sync", d.action(RoleOperator, d.syncNow))
	m.Handle("POST /ui/fleet/{target}/{app}/{action}", d.action(RoleOperator, d.fleetAction))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := d.session(r); !ok {
			d.unauthenticated(w, r)
			return
		}
		d.fail(w, r, http.StatusNotFound, "There is no page "+r.URL.Path+".")
	})
	d.mux = m
}

// session returns the request's session, if it has a live one.
func (d *Dashboard) session(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", session{}, false
	}
	s, ok := d.sess.get(c.Value)
	return c.Value, s, ok
}

// unauthenticated sends a browser without a session to the login page;
// a script's request (events, fragments) gets 401.
func (d *Dashboard) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.Header.Get("X-Ferry-Fragment") == "" && r.URL.Path != "/ui/events" {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	http.Error(w, "log in first: a session is required", http.StatusUnauthorized)
}

type authedFunc func(w http.ResponseWriter, r *http.Request, id string, s session)

// authed runs fn for requests with a live session.
func (d *Dashboard) authed(fn authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, s, ok := d.session(r)
		if !ok {
			d.unauthenticated(w, r)
			return
		}
		fn(w, r, id, s)
	})
}

// action runs fn for a POST with a live session, a same-origin request,
// the session's CSRF token in the form field "csrf", and at least role.
// It answers 403 otherwise, saying which check failed.
func (d *Dashboard) action(need Role, fn authedFunc) http.Handler {
	return d.authed(func(w http.ResponseWriter, r *http.Request, id string, s session) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			d.fail(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "null" {
			u, err := url.Parse(o)
			if err != nil || u.Host != r.Host {
				d.log.Warn("dashboard action refused: cross-origin", "origin", o, "path", r.URL.Path)
				d.fail(w, r, http.StatusForbidden, "Cross-origin requests are refused.")
				return
			}
		}
		if !sameToken(r.PostFormValue("csrf"), s.csrf) {
			d.log.Warn("dashboard action refused: missing or wrong CSRF token", "path", r.URL.Path, "client", clientAddr(r))
			d.fail(w, r, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
			return
		}
		if need == RoleOperator && s.role != RoleOperator {
			d.log.Warn("dashboard action refused: viewer", "path", r.URL.Path, "client", clientAddr(r))
			d.fail(w, r, http.StatusForbidden, "This needs the operator role; you are logged in as a viewer.")
			return
		}
		fn(w, r, id, s)
	})
}

// back redirects to the form's "back" path when it is a dashboard page,
// else to fallback, with msg shown there once.
func (d *Dashboard) back(w http.ResponseWriter, r *http.Request, id, fallback, msg string) {
	to := r.PostFormValue("back")
	if !strings.HasPrefix(to, "/ui/") || strings.HasPrefix(to, "//") || strings.ContainsAny(to, "\\\r\n") {
		to = fallback
	}
	d.sess.setFlash(id, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := d.session(r); ok {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "login", pageData{Title: "Log in", Login: true, Viewer: d.tok.hasViewer})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if wait := d.lim.wait(addr); wait > 0 {
		d.log.Warn("dashboard login refused: too many failed attempts", "client", addr)
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		d.render(w, r, http.StatusTooManyRequests, "login", pageData{Title: "Log in", Login: true, Viewer: d.tok.hasViewer,
			Error: fmt.Sprintf("Too many failed logins from your address: wait %d seconds and try again.", int(wait.Seconds())+1)})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		d.render(w, r, http.StatusBadRequest, "login", pageData{Title: "Log in", Login: true, Error: "The form could not be read."})
		return
	}
	role := d.tok.role(strings.TrimSpace(r.PostFormValue("token")))
	if role == "" {
		d.lim.fail(addr)
		d.log.Warn("dashboard login refused: wrong token", "client", addr)
		d.render(w, r, http.StatusUnauthorized, "login", pageData{Title: "Log in", Login: true, Viewer: d.tok.hasViewer,
			Error: "That token is not valid. Use the agent's operator token (the status API's)" + map[bool]string{true: " or its viewer token.", false: "."}[d.tok.hasViewer]})
		return
	}
	id, _ := d.sess.create(role)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(d.opts.SessionTTL.Seconds())})
	d.log.Info("dashboard login", "role", role, "client", addr)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, id string, _ session) {
	d.sess.delete(id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func (d *Dashboard) rollback(w http.ResponseWriter, r *http.Request, id string, _ session) {
	app := r.PathValue("app")
	p, err := d.opts.Source.Pin(app, strings.TrimSpace(r.PostFormValue("digest")))
	if err != nil {
		d.back(w, r, id, "/ui/apps/"+url.PathEscape(app), "Rollback failed: "+err.Error())
		return
	}
	d.log.Info("dashboard: app pinned", "app", app, "digest", p.Digest)
	d.back(w, r, id, "/ui/apps/"+url.PathEscape(app), fmt.Sprintf("App %s pinned at %s; a round applies it now.", app, short(p.Digest)))
}

func (d *Dashboard) unpin(w http.ResponseWriter, r *http.Request, id string, _ session) {
	app := r.PathValue("app")
	msg := fmt.Sprintf("App %s unpinned; the spec's version deploys again.", app)
	if err := d.opts.Source.Unpin(app); err != nil {
		msg = "Unpin failed: " + err.Error()
	}
	d.back(w, r, id, "/ui/apps/"+url.PathEscape(app), msg)
}

func (d *Dashboard) syncNow(w http.ResponseWriter, r *http.Request, id string, _ session) {
	d.opts.Source.Sync()
	d.back(w, r, id, "/ui/", "A round was queued; failed apps are retried now.")
}

func (d *Dashboard) fleetAction(w http.ResponseWriter, r *http.Request, id string, _ session) {
	f := d.opts.Fleet
	if f == nil {
		d.fail(w, r, http.StatusNotFound, "This agent runs no fleet.")
		return
	}
	target, app, act := r.PathValue("target"), r.PathValue("app"), r.PathValue("action")
	var err error
	switch act {
	case "pause":
		err = f.Pause(target, app)
	case "resume":
		err = f.Resume(target, app)
	case "abort":
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if reason == "" {
			reason = "aborted from the dashboard"
		}
		err = f.Abort(target, app, reason)
	default:
		d.fail(w, r, http.StatusNotFound, "Unknown action "+act+": want pause, resume or abort.")
		return
	}
	msg := fmt.Sprintf("Rollout of %s on %s: %s done.", app, target, act)
	if err != nil {
		msg = fmt.Sprintf("Rollout of %s on %s: %s failed: %v", app, target, act, err)
	}
	d.log.Info("dashboard: fleet action", "target", target, "app", app, "action", act, "error", err)
	d.back(w, r, id, "/ui/fleet", msg)
}

// events streams the agent's events as server-sent events ("update", the
// event as JSON) until the client goes, the session expires or Close.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, id string, _ session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	sub := d.opts.Source.Subscribe(256)
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	fl.Flush()
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	var buf bytes.Buffer
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case <-beat.C:
			if _, ok := d.sess.get(id); !ok {
				fmt.Fprint(w, "event: logout\ndata: {}\n\n")
				fl.Flush()
				return
			}
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case e := <-sub.C:
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(e); err != nil {
				continue
			}
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", bytes.TrimSpace(buf.Bytes()))
			fl.Flush()
		}
	}
}
