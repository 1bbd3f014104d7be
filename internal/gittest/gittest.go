package gittest

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env returns the environment every git command of this package runs with:
// the process environment without GIT_* variables, plus a private HOME under
// home, GIT_CONFIG_NOSYSTEM=1, no terminal prompts and a fixed author and
// committer.
func Env(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=init.defaultBranch",
		"GIT_CONFIG_VALUE_0=main",
		"GIT_AUTHOR_NAME=Ferry Test",
		"GIT_AUTHOR_EMAIL=test@ferry.invalid",
		"GIT_COMMITTER_NAME=Ferry Test",
		"GIT_COMMITTER_EMAIL=test@ferry.invalid",
	)
}

// Git runs the real git CLI in dir with Env(home) and returns its trimmed
// standard output. It fails the test when git fails.
func Git(t testing.TB, home, dir string, args ...string) string {
	t.Helper()
	out, err := run(home, dir, args...)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	return out
}

func run(home, dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env(home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s (in %s): %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Server is a bare git repository served over HTTP by `git http-backend`
// on a 127.0.0.1 port. It is safe for concurrent use.
type Server struct {
	t    testing.TB
	home string
	root string // GIT_PROJECT_ROOT
	name string // repository directory name, "repo.git"
	ln   *downListener
	srv  *http.Server

	scheme string // "http", or "https" with Options.TLS
	caFile string // the CA's certificate with Options.TLS

	mu             sync.Mutex
	user, password string
	requests       int
}

// Options tune NewServer. The zero value is the default.
type Options struct {
	// Branch is the default branch of the bare repository. Empty means
	// "main".
	Branch string
	// Username and Password, when set, make the server require HTTP basic
	// authentication with exactly these credentials (401 otherwise).
	Username, Password string
	// TLS, when true, serves https with a certificate for 127.0.0.1 signed
	// by CA (a fresh test CA when CA is nil); CAFile returns its
	// certificate, and the server's own clones and pushes trust it.
	TLS bool
	// CA signs the server's certificate when TLS is set.
	CA *CA
}

// NewServer creates an empty bare repository and serves it over HTTP on
// 127.0.0.1:0 until the test ends. Pushing is allowed.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("gittest: the git CLI is required: %v", err)
	}
	branch := opts.Branch
	if branch == "" {
		branch = "main"
	}
	base := t.TempDir()
	s := &Server{t: t, home: filepath.Join(base, "home"), root: filepath.Join(base, "srv"), name: "repo.git",
		user: opts.Username, password: opts.Password, scheme: "http"}
	for _, d := range []string{s.home, s.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, s.home, s.root, "init", "--quiet", "--bare", "--initial-branch="+branch, s.name)
	Git(t, s.home, s.Path(), "config", "http.receivepack", "true")

	backend, err := backendPath(s.home)
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	h := &cgi.Handler{
		Path: backend,
		Root: "/",
		Dir:  s.root,
		Env: append(Env(s.home),
			"GIT_PROJECT_ROOT="+s.root,
			"GIT_HTTP_EXPORT_ALL=1",
		),
		Stderr: ioDiscard{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gittest: listen: %v", err)
	}
	s.ln = &downListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	s.srv = &http.Server{Handler: s.auth(h), ReadHeaderTimeout: 10 * time.Second, ConnState: s.ln.track}
	var served net.Listener = s.ln
	if opts.TLS {
		s.scheme = "https"
		served = tls.NewListener(s.ln, s.setupTLS(opts.CA))
		// Refused handshakes are what the tests provoke; keep them quiet.
		s.srv.ErrorLog = log.New(ioDiscard{}, "", 0)
	}
	go s.srv.Serve(served) //nolint:errcheck // ends with Close in Cleanup
	t.Cleanup(func() { s.srv.Close() })
	return s
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

func backendPath(home string) (string, error) {
	dir, err := run(home, home, "--exec-path")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "git-http-backend")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("git-http-backend not found: %w", err)
	}
	return p, nil
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		user, pass := s.user, s.password
		s.mu.Unlock()
		if user != "" || pass != "" {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// URL returns the repository's clone URL, "http://127.0.0.1:PORT/repo.git"
// (https with Options.TLS).
func (s *Server) URL() string {
	return s.scheme + "://" + s.ln.Addr().String() + "/" + s.name
}

// Path returns the bare repository's directory, usable as a local path or
// (with "file://") a file URL.
func (s *Server) Path() string { return filepath.Join(s.root, s.name) }

// Home returns the private HOME the server's git commands use.
func (s *Server) Home() string { return s.home }

// Requests returns how many HTTP requests the server received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Head returns the commit the bare repository's branch points at, or ""
// when the branch does not exist yet.
func (s *Server) Head(branch string) string {
	out, err := run(s.home, s.Path(), "rev-parse", "--verify", "--quiet", "refs/heads/"+branch)
	if err != nil {
		return ""
	}
	return out
}

// Down makes the server unreachable: open connections are cut and new ones
// are closed as soon as they are accepted. The port stays reserved.
func (s *Server) Down() { s.ln.setDown(true) }

// Up makes the server reachable again after Down.
func (s *Server) Up() { s.ln.setDown(false) }

// downListener closes connections while down.
type downListener struct {
	net.Listener
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func (l *downListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		down := l.down
		l.mu.Unlock()
		if !down {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) //nolint:errcheck // best effort: reset rather than FIN
		}
		c.Close()
	}
}

func (l *downListener) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateNew:
		l.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	}
}

func (l *downListener) setDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
	if down {
		for c := range l.conns {
			c.Close()
		}
	}
}

// Work is a working clone of a Server's repository.
type Work struct {
	t      testing.TB
	home   string
	Dir    string // the clone's directory
	Branch string // the branch commits go to and are pushed from
}

// Clone makes a working clone of the server's repository (empty or not)
// in a temporary directory, on branch "main" unless the server has
// another default.
func (s *Server) Clone(t testing.TB) *Work {
	t.Helper()
	return CloneURL(t, s.URL(), s.home)
}

// CloneURL clones url into a temporary directory with Env(home).
func CloneURL(t testing.TB, url, home string) *Work {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	Git(t, home, filepath.Dir(dir), "clone", "--quiet", url, dir)
	w := &Work{t: t, home: home, Dir: dir}
	w.Branch = Git(t, home, dir, "symbolic-ref", "--short", "HEAD")
	return w
}

// Git runs git in the clone and returns its trimmed output.
func (w *Work) Git(args ...string) string {
	w.t.Helper()
	return Git(w.t, w.home, w.Dir, args...)
}

// Write writes content to the slash-separated path rel inside the clone,
// creating directories, and stages it.
func (w *Work) Write(rel, content string) {
	w.t.Helper()
	w.WriteBytes(rel, []byte(content))
}

// WriteBytes is Write for binary content.
func (w *Work) WriteBytes(rel string, content []byte) {
	w.t.Helper()
	p := filepath.Join(w.Dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.Git("add", "--", rel)
}

// CopyDir copies every regular file under src into the clone at rel and
// stages them.
func (w *Work) CopyDir(src, rel string) {
	w.t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w.WriteBytes(filepath.ToSlash(filepath.Join(rel, r)), b)
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// Remove deletes the path rel from the clone and stages the removal.
func (w *Work) Remove(rel string) {
	w.t.Helper()
	w.Git("rm", "--quiet", "-r", "--", rel)
}

// Commit commits everything staged (an empty commit when nothing is) and
// returns the new commit's hash.
func (w *Work) Commit(msg string) string {
	w.t.Helper()
	w.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	return w.Git("rev-parse", "HEAD")
}

// Push pushes the branch to origin.
func (w *Work) Push() {
	w.t.Helper()
	if err := w.TryPush(); err != nil {
		w.t.Fatalf("gittest: %v", err)
	}
}

// TryPush pushes the branch to origin and returns any error instead of
// failing the test.
func (w *Work) TryPush() error {
	_, err := run(w.home, w.Dir, "push", "--quiet", "origin", "HEAD:refs/heads/"+w.Branch)
	if err != nil {
		return errors.New(err.Error())
	}
	return nil
}

// CommitPush writes files (slash-separated path → content), commits with
// msg, pushes, and returns the commit hash. Use Remove to delete files.
func (w *Work) CommitPush(msg string, files map[string]string) string {
	w.t.Helper()
	for p, c := range files {
		w.Write(p, c)
	}
	sha := w.Commit(msg)
	w.Push()
	return sha
}
