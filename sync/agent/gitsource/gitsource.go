package gitsource

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/ferry-wasm/ferry/internal/parallel"
)

// GitAuth holds the credentials the agent uses to fetch the spec
// repository. The zero value fetches anonymously. Its String method never
// shows a secret.
type GitAuth struct {
	// Username is the HTTP basic user name (FERRY_GIT_USERNAME). With a
	// Token and no Username, "x-access-token" is sent, which GitHub, GitLab
	// and Gitea all accept.
	Username string
	// Password is the HTTP basic password (FERRY_GIT_PASSWORD or the file
	// named by FERRY_GIT_PASSWORD_FILE).
	Password string
	// Token is an HTTP access token (FERRY_GIT_TOKEN or the file named by
	// FERRY_GIT_TOKEN_FILE), sent as the basic-auth password.
	Token string
	// SSHKeyFile is a private key file for ssh URLs (FERRY_GIT_SSH_KEY).
	// Empty means ssh URLs use the ssh agent.
	SSHKeyFile string
	// SSHKeyPassphrase decrypts SSHKeyFile (FERRY_GIT_SSH_KEY_PASSPHRASE).
	SSHKeyPassphrase string
	// SSHUser is the ssh user name. Empty means the URL's user, or "git".
	SSHUser string
	// KnownHostsFile lists the ssh host keys to trust
	// (FERRY_GIT_KNOWN_HOSTS). Empty means ~/.ssh/known_hosts and
	// /etc/ssh/ssh_known_hosts; an unknown host key is always refused.
	KnownHostsFile string
	// CAFile is a PEM file of certificate authorities that https git
	// servers' certificates may be signed by, trusted in addition to the
	// system's roots (FERRY_GIT_CA_FILE, or ferry agent --git-ca-file).
	// Empty means the system's roots only; a certificate that no trusted
	// CA signed is always refused.
	CAFile string
}

// String describes which credentials are set without showing any secret.
func (a GitAuth) String() string {
	var parts []string
	if a.Username != "" {
		parts = append(parts, "username="+a.Username)
	}
	if a.Password != "" {
		parts = append(parts, "password=(set)")
	}
	if a.Token != "" {
		parts = append(parts, "token=(set)")
	}
	if a.SSHKeyFile != "" {
		parts = append(parts, "ssh-key="+a.SSHKeyFile)
	}
	if a.KnownHostsFile != "" {
		parts = append(parts, "known-hosts="+a.KnownHostsFile)
	}
	if a.CAFile != "" {
		parts = append(parts, "ca-file="+a.CAFile)
	}
	if len(parts) == 0 {
		return "anonymous"
	}
	return strings.Join(parts, " ")
}

// GitAuthFromEnv reads GitAuth from the FERRY_GIT_* environment variables
// through getenv (os.Getenv when nil): FERRY_GIT_USERNAME,
// FERRY_GIT_PASSWORD, FERRY_GIT_PASSWORD_FILE, FERRY_GIT_TOKEN,
// FERRY_GIT_TOKEN_FILE, FERRY_GIT_SSH_KEY, FERRY_GIT_SSH_KEY_PASSPHRASE,
// FERRY_GIT_SSH_USER, FERRY_GIT_KNOWN_HOSTS and FERRY_GIT_CA_FILE. A *_FILE variable names a
// file whose content (trailing newline trimmed) is the value; an unreadable
// file is an error (the message names the file, never its content).
func GitAuthFromEnv(getenv func(string) string) (GitAuth, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	a := GitAuth{
		Username:         getenv("FERRY_GIT_USERNAME"),
		Password:         getenv("FERRY_GIT_PASSWORD"),
		Token:            getenv("FERRY_GIT_TOKEN"),
		SSHKeyFile:       getenv("FERRY_GIT_SSH_KEY"),
		SSHKeyPassphrase: getenv("FERRY_GIT_SSH_KEY_PASSPHRASE"),
		SSHUser:          getenv("FERRY_GIT_SSH_USER"),
		KnownHostsFile:   getenv("FERRY_GIT_KNOWN_HOSTS"),
		CAFile:           getenv("FERRY_GIT_CA_FILE"),
	}
	for _, f := range []struct {
		env string
		dst *string
	}{{"FERRY_GIT_PASSWORD_FILE", &a.Password}, {"FERRY_GIT_TOKEN_FILE", &a.Token}} {
		p := getenv(f.env)
		if p == "" || *f.dst != "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return GitAuth{}, fmt.Errorf("%w: %s names %s: %w", ErrGitAuth, f.env, p, err)
		}
		*f.dst = strings.TrimRight(string(b), "\r\n")
	}
	return a, nil
}

// Method returns the go-git auth method for url.
func (a GitAuth) Method(url string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrGitURL, RedactURL(url), err)
	}
	switch ep.Protocol {
	case "http", "https":
		switch {
		case a.Token != "":
			user := a.Username
			if user == "" {
				user = "x-access-token"
			}
			return &githttp.BasicAuth{Username: user, Password: a.Token}, nil
		case a.Username != "" || a.Password != "":
			return &githttp.BasicAuth{Username: a.Username, Password: a.Password}, nil
		}
		return nil, nil
	case "ssh":
		user := a.SSHUser
		if user == "" {
			user = ep.User
		}
		if user == "" {
			user = "git"
		}
		var files []string
		if a.KnownHostsFile != "" {
			files = []string{a.KnownHostsFile}
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return nil, fmt.Errorf("%w: known hosts: %w", ErrGitAuth, err)
		}
		if a.SSHKeyFile != "" {
			k, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, a.SSHKeyPassphrase)
			if err != nil {
				return nil, fmt.Errorf("%w: ssh key %s: %w", ErrGitAuth, a.SSHKeyFile, err)
			}
			k.HostKeyCallback = cb
			return k, nil
		}
		ag, err := gitssh.NewSSHAgentAuth(user)
		if err != nil {
			return nil, fmt.Errorf("%w: no ssh key file and no ssh agent: %w", ErrGitAuth, err)
		}
		ag.HostKeyCallback = cb
		return ag, nil
	}
	return nil, nil // file and git protocols take no credentials
}

// caBundle returns the PEM content of CAFile, or nil without one. A file
// that cannot be read or holds no certificate is an error wrapping
// ErrGitAuth.
func (a GitAuth) caBundle() ([]byte, error) {
	if a.CAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(a.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: git CA file: %w", ErrGitAuth, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: git CA file %s holds no PEM certificate", ErrGitAuth, a.CAFile)
	}
	return b, nil
}

// RedactURL hides a password in a URL's user info.
func RedactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	slash := strings.Index(rest, "/")
	if at < 0 || (slash >= 0 && at > slash) {
		return u
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return u
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// ErrUnsafeTree means a commit's tree cannot be checked out safely: an
// entry's path is not clean and local, or lies beyond a symbolic link (a
// tree that git's own fsck refuses, but servers do not run fsck by
// default). Retrying does not help; a newer commit must fix the tree.
var ErrUnsafeTree = errors.New("unsafe git tree")

// Source keeps a bare mirror of one branch of the spec repository in
// dir/repo and checks commits out into dir/worktrees/<sha>, each written to
// a temporary directory and renamed into place, so a checkout either
// exists completely or not at all, even after SIGKILL. It is used by one
// goroutine at a time.
type Source struct {
	URL, Branch string
	Dir         string
	Auth        GitAuth
	Timeout     time.Duration
	// Log gets a warning when the mirror is started over; nil discards it.
	Log  *slog.Logger
	repo *git.Repository
}

func (g *Source) repoDir() string     { return filepath.Join(g.Dir, "repo") }
func (g *Source) worktreeDir() string { return filepath.Join(g.Dir, "worktrees") }

// open opens the mirror, creating it (or re-creating it when it cannot be
// opened or a ref is torn, e.g. after a crash mid-write) as needed, and points its origin
// remote at g.url.
func (g *Source) open() error {
	if g.repo != nil {
		return nil
	}
	r, err := git.PlainOpen(g.repoDir())
	if err == nil {
		err = checkRefs(r)
	}
	if err != nil {
		if !errors.Is(err, git.ErrRepositoryNotExists) {
			parallel.LoggerOr(g.Log).LogAttrs(context.Background(), slog.LevelWarn,
				"gitsource: the git mirror is unreadable (a crash mid-write?); starting it over",
				slog.String("dir", g.repoDir()), slog.String("error", err.Error()))
		}
		if rmErr := os.RemoveAll(g.repoDir()); rmErr != nil {
			return fmt.Errorf("gitsource: reset git mirror: %w", rmErr)
		}
		if r, err = git.PlainInit(g.repoDir(), true); err != nil {
			return fmt.Errorf("gitsource: create git mirror in %s: %w", g.repoDir(), err)
		}
	}
	rem, err := r.Remote("origin")
	if err == nil && !slices.Equal(rem.Config().URLs, []string{g.URL}) {
		if err := r.DeleteRemote("origin"); err != nil {
			return fmt.Errorf("gitsource: git mirror: %w", err)
		}
		err = git.ErrRemoteNotFound
	}
	if errors.Is(err, git.ErrRemoteNotFound) {
		_, err = r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{g.URL}})
	}
	if err != nil {
		return fmt.Errorf("gitsource: git mirror: %w", err)
	}
	g.repo = r
	return nil
}

// checkRefs reads every reference of the mirror and checks that the object
// each names is there. go-git truncates a ref file and then writes it in
// place, so a process killed between the two leaves it empty or cut short,
// and every later fetch would fail ("ref file is empty"). The mirror is only
// a cache of the remote, so a mirror that fails this is started over.
func checkRefs(r *git.Repository) error {
	refs, err := r.References()
	if err != nil {
		return err
	}
	defer refs.Close()
	return refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		if err := r.Storer.HasEncodedObject(ref.Hash()); err != nil {
			return fmt.Errorf("%s names %s: %w", ref.Name(), ref.Hash(), err)
		}
		return nil
	})
}

// Fetch brings the mirror up to date with the remote branch and returns the
// branch's newest commit. Errors wrap ErrGitUnreachable when the remote
// could not be read; retrying later may help.
func (g *Source) Fetch(ctx context.Context) (string, error) {
	if err := g.open(); err != nil {
		return "", err
	}
	auth, err := g.Auth.Method(g.URL)
	if err != nil {
		return "", err
	}
	caBundle, err := g.Auth.caBundle()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, parallel.OrDefault(g.Timeout, 2*time.Minute))
	defer cancel()
	local := plumbing.NewRemoteReferenceName("origin", g.Branch)
	spec := gitconfig.RefSpec("+" + plumbing.NewBranchReferenceName(g.Branch).String() + ":" + local.String())
	err = g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []gitconfig.RefSpec{spec},
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
		CABundle:   caBundle,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository), errors.Is(err, git.NoMatchingRefSpecError{}):
		return "", fmt.Errorf("%w: %s has no branch %q yet", ErrGitUnreachable, RedactURL(g.URL), g.Branch)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return "", fmt.Errorf("%w: %s: %w (credentials: %s)", ErrGitUnreachable, RedactURL(g.URL), err, g.Auth)
	case errors.As(err, new(x509.UnknownAuthorityError)):
		trusted := "any of the system's certificate authorities (set FERRY_GIT_CA_FILE or --git-ca-file to trust another CA)"
		if g.Auth.CAFile != "" {
			trusted = "the certificate authorities in " + g.Auth.CAFile + " or the system's"
		}
		return "", fmt.Errorf("%w: fetch %s: the server's TLS certificate is not signed by %s: %w", ErrGitUnreachable, RedactURL(g.URL), trusted, err)
	default:
		return "", fmt.Errorf("%w: fetch %s: %w", ErrGitUnreachable, RedactURL(g.URL), err)
	}
	ref, err := g.repo.Reference(local, true)
	if err != nil {
		return "", fmt.Errorf("%w: %s has no branch %q: %w", ErrGitUnreachable, RedactURL(g.URL), g.Branch, err)
	}
	return ref.Hash().String(), nil
}

// CommitInfo is who made a commit and what it says.
type CommitInfo struct {
	// Author is "Name <email>".
	Author string
	// Subject is the first line of the message, at most 200 bytes.
	Subject string
	// When is the author's time.
	When time.Time
}

// CommitInfo returns the author and subject of commit, read from the
// mirror (call it after a Fetch that brought the commit). Like Fetch and
// Checkout it must not run concurrently with them.
func (g *Source) CommitInfo(commit string) (CommitInfo, error) {
	if err := g.open(); err != nil {
		return CommitInfo{}, err
	}
	c, err := g.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return CommitInfo{}, fmt.Errorf("gitsource: commit %s: %w", commit, err)
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	subject = strings.TrimSpace(subject)
	if len(subject) > 200 {
		subject = strings.ToValidUTF8(subject[:200], "") + "…"
	}
	return CommitInfo{Author: c.Author.Name + " <" + c.Author.Email + ">", Subject: subject, When: c.Author.When}, nil
}

// Checkout returns a directory holding the files of commit, writing it
// first when needed.
func (g *Source) Checkout(commit string) (string, error) {
	if err := g.open(); err != nil {
		return "", err
	}
	final := filepath.Join(g.worktreeDir(), commit)
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	c, err := g.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return "", fmt.Errorf("gitsource: checkout %s: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return "", fmt.Errorf("gitsource: checkout %s: %w", commit, err)
	}
	if err := os.MkdirAll(g.worktreeDir(), 0o755); err != nil {
		return "", fmt.Errorf("gitsource: checkout: %w", err)
	}
	tmp, err := os.MkdirTemp(g.worktreeDir(), ".tmp-"+commit[:min(12, len(commit))]+"-")
	if err != nil {
		return "", fmt.Errorf("gitsource: checkout: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeTree(tmp, tree); err != nil {
		return "", fmt.Errorf("gitsource: checkout %s: %w", commit, err)
	}
	if err := syncDir(tmp); err != nil {
		return "", fmt.Errorf("gitsource: checkout %s: %w", commit, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, statErr := os.Stat(final); statErr == nil {
			return final, nil
		}
		return "", fmt.Errorf("gitsource: checkout %s: %w", commit, err)
	}
	ok = true
	return final, nil
}

// writeTree writes the files of tree below dir through an os.Root opened
// at dir, so no entry can create or follow a path outside it. A tree is
// untrusted input: servers that do not fsck (git's default) accept trees
// holding a symbolic link and, under the same name, a directory, or a path
// below a link. Such a tree, and any entry whose name is not a clean local
// path, fails with an error wrapping ErrUnsafeTree that names the entry.
// Symbolic links are written as they are (the spec loader and builder
// refuse to read through one that leaves the checkout) but nothing is ever
// written through one.
func writeTree(dir string, tree *object.Tree) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	links := map[string]bool{} // entries written as symbolic links
	return tree.Files().ForEach(func(f *object.File) error { return writeTreeFile(root, links, f) })
}

func writeTreeFile(root *os.Root, links map[string]bool, f *object.File) error {
	name := filepath.FromSlash(f.Name)
	if !filepath.IsLocal(name) || filepath.Clean(name) != name {
		return fmt.Errorf("%w: tree entry %q is not a clean path inside the checkout", ErrUnsafeTree, f.Name)
	}
	// No parent may be a symbolic link: git itself refuses to check out a
	// path "beyond a symbolic link". links catches the links this tree
	// wrote; Lstat catches any other (os.Root refuses links that leave the
	// root on its own, this also refuses links that stay inside).
	for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
		if links[d] {
			return fmt.Errorf("%w: tree entry %q lies beyond the symbolic link %q", ErrUnsafeTree, f.Name, filepath.ToSlash(d))
		}
		if fi, err := root.Lstat(d); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%w: tree entry %q lies beyond the symbolic link %q", ErrUnsafeTree, f.Name, filepath.ToSlash(d))
		}
	}
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%w: tree entry %q: %w", ErrUnsafeTree, f.Name, err)
		}
	}
	switch f.Mode {
	case filemode.Symlink:
		target, err := f.Contents()
		if err != nil {
			return err
		}
		if err := root.Symlink(target, name); err != nil {
			return fmt.Errorf("%w: tree entry %q: %w", ErrUnsafeTree, f.Name, err)
		}
		links[name] = true
		return nil
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
	default:
		return nil // submodules and other entries are not checked out
	}
	perm := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		perm = 0o755
	}
	r, err := f.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	out, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("%w: tree entry %q: %w", ErrUnsafeTree, f.Name, err)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Prune removes checkouts other than keep, and leftover temporary
// directories of interrupted checkouts.
func (g *Source) Prune(keep ...string) {
	ents, err := os.ReadDir(g.worktreeDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		os.RemoveAll(filepath.Join(g.worktreeDir(), e.Name()))
	}
}
