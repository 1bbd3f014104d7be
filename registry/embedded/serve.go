package embedded

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // Options.Htpasswd
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // Options.Dir
	"github.com/sirupsen/logrus"
)

// Options configure the embedded registry. Dir is required; every
// other zero value is a default.
type Options struct {
	// Dir is the filesystem storage root. It is created if missing.
	// Required.
	Dir string
	// Addr is the TCP address to listen on. Empty means "127.0.0.1:0" (a
	// free loopback port; read it from Server.Addr).
	Addr string
	// Logger receives the server's messages: ferry's own and Distribution's
	// warnings and errors (everything, with Debug). Nil means none.
	Logger *slog.Logger
	// Debug forwards Distribution's info and debug messages (one per
	// request) to Logger too.
	Debug bool
	// Htpasswd is the path of an htpasswd file (bcrypt entries); when set,
	// every request needs HTTP basic auth from it. Empty means no auth.
	Htpasswd string
	// WriteLogin, when set, is the HTTP basic login every write needs:
	// any method but GET and HEAD (pushes, tags, signatures, deletes) is
	// answered 401 without it, while reads stay anonymous (for the local
	// pulls of ferry-host and ferry up). Nil means writes are anonymous
	// too, unless Htpasswd is set.
	WriteLogin *Login
}

// Login is an HTTP basic login. Its String never shows the password.
type Login struct {
	Username, Password string
}

// String implements fmt.Stringer without the password.
func (l Login) String() string {
	return fmt.Sprintf("Login{Username:%q Password:<redacted>}", l.Username)
}

// GoString implements fmt.GoStringer without the password.
func (l Login) GoString() string { return l.String() }

// writeGuard answers 401 to every request but GET and HEAD that does not
// carry login (compared in constant time, through hashes so that lengths
// do not leak either).
func writeGuard(next http.Handler, login Login) http.Handler {
	want := sha256.Sum256([]byte(login.Username + "\x00" + login.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		u, p, ok := r.BasicAuth()
		got := sha256.Sum256([]byte(u + "\x00" + p))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="ferry registry (writes)"`)
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"writes to this registry need its write login"}]}`+"\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Server is a running embedded registry: CNCF Distribution with filesystem
// storage, in this process. Several may run at once.
//
// Distribution logs through logrus's process-wide standard logger; the
// first Server sends that logger's output to io.Discard and routes its
// entries to each Server's Options.Logger instead (4xx answers at
// info level, so a quiet server logs only real trouble).
type Server struct {
	addr   string
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error
	log    *slog.Logger
	unhook func()
	once   sync.Once
}

// NewServer starts the embedded registry and returns once it listens. It
// runs until Close is called or ctx ends.
func NewServer(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("registry: serve: no storage directory")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("registry: serve: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: serve: %w", err)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("registry: serve: %w", err)
	}

	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": dir},
		"delete":     configuration.Parameters{"enabled": true},
	}
	cfg.HTTP.Secret = hex.EncodeToString(secret[8:])
	cfg.Log.AccessLog.Disabled = true
	if opts.Htpasswd != "" {
		if _, err := os.Stat(opts.Htpasswd); err != nil {
			return nil, fmt.Errorf("registry: serve: htpasswd file: %w", err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "ferry", "path": opts.Htpasswd}}
	}

	instance := hex.EncodeToString(secret[:8])
	unhook := hookLogrus(instance, log, opts.Debug)
	appCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Distribution tags its log entries with the context value
	// "instance.id" (a plain string key); ours routes them to this
	// server's logger.
	appCtx = context.WithValue(appCtx, "instance.id", instance) //nolint:staticcheck // key defined by Distribution
	app, err := newApp(appCtx, cfg)
	if err != nil {
		cancel()
		unhook()
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		cancel()
		unhook()
		return nil, fmt.Errorf("registry: serve: %w", err)
	}
	var h http.Handler = app
	if opts.WriteLogin != nil {
		h = writeGuard(app, *opts.WriteLogin)
	}
	s := &Server{
		addr:   ln.Addr().String(),
		srv:    &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second},
		cancel: cancel,
		done:   make(chan error, 1),
		log:    log,
		unhook: unhook,
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-appCtx.Done():
		}
	}()
	log.Info("registry listening", "addr", s.addr, "dir", dir, "auth", opts.Htpasswd != "", "write_login", opts.WriteLogin != nil)
	return s, nil
}

// newApp builds Distribution's handler, turning its panics on bad
// configuration (e.g. an unusable storage directory) into errors.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("registry: serve: starting Distribution: %v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Addr returns the address the server listens on ("127.0.0.1:41234").
func (s *Server) Addr() string { return s.addr }

// Close stops the server, waiting up to five seconds for requests in
// flight. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// Connections still busy (or opened and never used: net/http
			// counts those idle only after 5 s) after the grace period
			// are closed; the server is stopped all the same.
			s.log.Warn("registry: connections still open after 5s; closing them", "addr", s.addr)
			err = s.srv.Close()
		}
		if serr := <-s.done; err == nil {
			err = serr
		}
		s.cancel()
		s.log.Info("registry stopped", "addr", s.addr)
		s.unhook()
	})
	return err
}

// Serve runs the embedded registry until ctx ends. It returns nil after a
// clean stop.
func Serve(ctx context.Context, opts Options) error {
	s, err := NewServer(ctx, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Distribution logs through logrus's standard logger, a process-wide
// value. The first embedded server silences its output and installs one
// hook that forwards each entry to the slog logger of the server it comes
// from (by its "instance.id" field); entries without one go to all.
var logrusSinks = struct {
	sync.Mutex
	once  sync.Once
	sinks map[string]logSink
}{sinks: map[string]logSink{}}

type logSink struct {
	log   *slog.Logger
	debug bool
}

func hookLogrus(instance string, log *slog.Logger, debug bool) (unhook func()) {
	logrusSinks.once.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.AddHook(fanoutHook{})
	})
	logrusSinks.Lock()
	logrusSinks.sinks[instance] = logSink{log: log, debug: debug}
	setLogrusLevel()
	logrusSinks.Unlock()
	return func() {
		logrusSinks.Lock()
		delete(logrusSinks.sinks, instance)
		setLogrusLevel()
		logrusSinks.Unlock()
	}
}

// setLogrusLevel lets logrus produce info and debug entries only while a
// server wants them. Called with the lock held.
func setLogrusLevel() {
	lvl := logrus.WarnLevel
	for _, s := range logrusSinks.sinks {
		if s.debug {
			lvl = logrus.DebugLevel
		}
	}
	logrus.SetLevel(lvl)
}

type fanoutHook struct{}

func (fanoutHook) Levels() []logrus.Level { return logrus.AllLevels }

func (fanoutHook) Fire(e *logrus.Entry) error {
	lvl := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == logrus.WarnLevel:
		lvl = slog.LevelWarn
	case e.Level == logrus.InfoLevel:
		lvl = slog.LevelInfo
	}
	// Distribution logs every 4xx answer (a HEAD for a blob not yet
	// uploaded, a wrong password) as an error; for a server those are
	// the client's business.
	if status, ok := e.Data["http.response.status"].(int); ok && status < 500 && lvl > slog.LevelInfo {
		lvl = slog.LevelInfo
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "source", "distribution")
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	instance, tagged := e.Data["instance.id"].(string)
	logrusSinks.Lock()
	defer logrusSinks.Unlock()
	for id, s := range logrusSinks.sinks {
		if (tagged && id != instance) || (lvl < slog.LevelWarn && !s.debug) {
			continue
		}
		s.log.Log(context.Background(), lvl, e.Message, attrs...)
	}
	return nil
}
