package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	orasreg "oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/ferry-wasm/ferry/registry/credential"
)

// Environment variables read by EnvCredential.
const (
	EnvUsername = "FERRY_REGISTRY_USERNAME"
	EnvPassword = "FERRY_REGISTRY_PASSWORD"
	EnvToken    = "FERRY_REGISTRY_TOKEN"
	// EnvHost names the one registry host ("ghcr.io", "127.0.0.1:5000")
	// the login in the three variables above is for (EnvCredentials).
	EnvHost = "FERRY_REGISTRY_HOST"
)

// Credential is a registry login (see [credential.Credential]: its String,
// GoString and LogValue never show the password or tokens). It is the same
// type the signer takes, so a [Client.CredentialFor] is a [credential.Func]
// for signer.RegistryOptions as is.
type Credential = credential.Credential

func orasCredential(c Credential) auth.Credential {
	if c.Token != "" {
		return auth.Credential{AccessToken: c.Token}
	}
	return auth.Credential{Username: c.Username, Password: c.Password, RefreshToken: c.IdentityToken}
}

func fromOras(c auth.Credential) Credential {
	return Credential{Username: c.Username, Password: c.Password, Token: c.AccessToken, IdentityToken: c.RefreshToken}
}

// EnvCredential reads FERRY_REGISTRY_USERNAME, FERRY_REGISTRY_PASSWORD and
// FERRY_REGISTRY_TOKEN through getenv (os.Getenv in a program). ok is false
// when none is set.
func EnvCredential(getenv func(string) string) (c Credential, ok bool) {
	c = Credential{Username: getenv(EnvUsername), Password: getenv(EnvPassword), Token: getenv(EnvToken)}
	return c, !c.IsZero()
}

// EnvCredentials reads the login of EnvCredential and the registry host it
// belongs to from FERRY_REGISTRY_HOST, and returns it as
// Options.Credentials: {host: login}, so that it is only ever sent to that
// registry (Docker config semantics: logins are per registry host). It
// returns nil when no login is set, and an error wrapping
// ErrCredentialHost when a login is set without a host (or with "*", or
// with a value that is not a host[:port]): a login for every registry
// would go to whichever registry a request names. The error never holds
// the password or token.
func EnvCredentials(getenv func(string) string) (map[string]Credential, error) {
	c, ok := EnvCredential(getenv)
	if !ok {
		return nil, nil
	}
	host := strings.TrimSpace(getenv(EnvHost))
	if host == "" || host == "*" || strings.ContainsAny(host, "/@ \t") {
		return nil, fmt.Errorf("registry: %w: %s/%s/%s are set but %s does not name the one registry host (like 127.0.0.1:5000) they are for",
			ErrCredentialHost, EnvUsername, EnvPassword, EnvToken, EnvHost)
	}
	return map[string]Credential{host: c}, nil
}

// Options configure a Client. The zero value is a usable default.
type Options struct {
	// Credentials are explicit logins by registry host ("ghcr.io",
	// "127.0.0.1:5000"); the key "*" applies to every host not listed —
	// it sends that login to any registry a reference names, so programs
	// that pull references they are given (ferry-host) must not use it;
	// see EnvCredentials. They win over the Docker config file. Nil means
	// none.
	Credentials map[string]Credential
	// DockerConfig is the path of a Docker config file whose "auths" and
	// credential helpers give logins. Empty means the Docker default
	// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json); a missing
	// file is fine.
	DockerConfig string
	// NoDockerConfig turns the Docker config file off.
	NoDockerConfig bool
	// Insecure allows plain HTTP to every registry (a spec's
	// `registry { insecure = true }`). False means HTTPS, except for
	// loopback hosts (127.0.0.0/8, ::1, localhost), which always use plain
	// HTTP.
	Insecure bool
	// CacheDir is the local OCI-layout cache that PullApp fills and reads.
	// A relative path is made absolute, against the working directory, by
	// New. Empty means <user cache dir>/ferry/oci. Use one Client per cache
	// directory in a process (the layout's index.json is held in memory).
	CacheDir string
	// UserAgent is sent with every request. Empty means "ferry".
	UserAgent string
	// Transport carries the HTTP requests. Nil means
	// http.DefaultTransport. Requests are retried on 5xx, 429 and timeouts
	// (oras-go's retry policy) on top of it.
	Transport http.RoundTripper
	// Concurrency caps parallel blob transfers of one operation. Zero
	// means 4.
	Concurrency int
	// MaxFilesBytes caps the size of one component's files layer that
	// PullApp accepts; a larger layer is refused (ErrFilesTooLarge) before
	// it is downloaded. Zero means DefaultMaxFilesBytes (64 MiB).
	MaxFilesBytes int64
	// Logger receives debug messages (blobs uploaded, skipped, fetched).
	// Nil means none. Credentials are never logged.
	Logger *slog.Logger
}

// Client pushes, pulls, resolves, copies and inspects ferry artifacts. It
// is safe for concurrent use. Create it with New.
type Client struct {
	opts   Options
	log    *slog.Logger
	client *auth.Client
	store  credentials.Store

	cacheMu sync.Mutex
	cache   *oci.Store
}

// New returns a Client. It fails only if the Docker config file exists but
// cannot be read.
func New(opts Options) (*Client, error) {
	c := &Client{opts: opts, log: opts.Logger}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.opts.Concurrency <= 0 {
		c.opts.Concurrency = 4
	}
	if c.opts.MaxFilesBytes <= 0 {
		c.opts.MaxFilesBytes = DefaultMaxFilesBytes
	}
	if c.opts.UserAgent == "" {
		c.opts.UserAgent = "ferry"
	}
	if c.opts.CacheDir != "" {
		dir, err := filepath.Abs(c.opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("registry: %w: %w", ErrCache, err)
		}
		c.opts.CacheDir = dir
	}
	if !opts.NoDockerConfig {
		var (
			st  credentials.Store
			err error
		)
		if opts.DockerConfig != "" {
			st, err = credentials.NewStore(opts.DockerConfig, credentials.StoreOptions{})
		} else {
			st, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("registry: reading Docker config: %w", err)
		}
		c.store = st
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.client = &auth.Client{
		Client:     &http.Client{Transport: retry.NewTransport(base)},
		Header:     http.Header{"User-Agent": {c.opts.UserAgent}},
		Cache:      auth.NewCache(),
		Credential: c.credential,
	}
	return c, nil
}

// credential resolves the login for hostport: explicit first, then Docker.
func (c *Client) credential(ctx context.Context, hostport string) (auth.Credential, error) {
	if cr, ok := c.opts.Credentials[hostport]; ok {
		return orasCredential(cr), nil
	}
	if cr, ok := c.opts.Credentials["*"]; ok {
		return orasCredential(cr), nil
	}
	if c.store != nil {
		return credentials.Credential(c.store)(ctx, hostport)
	}
	return auth.EmptyCredential, nil
}

// CredentialFor returns the login this client uses for the registry host
// ("ghcr.io", "127.0.0.1:5000"): explicit Options.Credentials first, then
// the Docker config. The zero Credential means anonymous. It is a
// [credential.Func]: other OCI clients (signer.RegistryOptions.Credentials)
// take it as is and use the same logins.
var _ credential.Func = (*Client)(nil).CredentialFor

func (c *Client) CredentialFor(ctx context.Context, host string) (Credential, error) {
	cr, err := c.credential(ctx, host)
	if err != nil {
		return Credential{}, fmt.Errorf("registry: credentials for %s: %w", host, err)
	}
	return fromOras(cr), nil
}

// PlainHTTP reports whether this client talks plain HTTP to the registry
// host: always for loopback hosts, for others only with Options.Insecure.
func (c *Client) PlainHTTP(host string) bool { return c.opts.Insecure || isLoopbackHost(host) }

// repository returns the oras-go repository for ref.
func (c *Client) repository(ref Reference) (*remote.Repository, error) {
	repo := &remote.Repository{
		Client:    c.client,
		Reference: orasreg.Reference{Registry: ref.Registry, Repository: ref.Repository},
		PlainHTTP: c.PlainHTTP(ref.Registry),
	}
	return repo, nil
}

// localCache opens the OCI-layout cache once; a failed open is tried
// again on the next call.
func (c *Client) localCache() (*oci.Store, error) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	if c.cache != nil {
		return c.cache, nil
	}
	dir := c.opts.CacheDir
	if dir == "" {
		ucd, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("registry: %w: no cache directory: %w", ErrCache, err)
		}
		dir = filepath.Join(ucd, "ferry", "oci")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w: %w", ErrCache, err)
	}
	if err := c.setAsideTornIndex(dir); err != nil {
		return nil, fmt.Errorf("registry: %w: %w", ErrCache, err)
	}
	st, err := oci.New(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: %w: opening %s: %w", ErrCache, dir, err)
	}
	c.cache = st
	return st, nil
}

// setAsideTornIndex renames the cache's index.json to index.json.torn when
// it is not valid JSON: oras-go writes it in place, so a process killed
// mid-write (a host's SIGKILL or power loss) leaves it empty or cut short,
// and every later open would fail. The cache is looked up by digest (blobs
// are written to a temporary file and renamed, so each is whole or absent);
// the index only lists tags, and a fresh one is written in its place.
func (c *Client) setAsideTornIndex(dir string) error {
	index := filepath.Join(dir, "index.json")
	b, err := os.ReadFile(index)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if json.Valid(b) {
		return nil
	}
	if err := os.Rename(index, index+".torn"); err != nil {
		return err
	}
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "registry: the local cache's index.json was torn (a crash mid-write); set it aside and started a fresh one",
		slog.String("cache", dir), slog.Int("bytes", len(b)))
	return nil
}

// Resolve returns the descriptor of the manifest ref names; for a tag,
// this is where the tag points now.
func (c *Client) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if r.ref() == "" {
		return ocispec.Descriptor{}, fmt.Errorf("registry: %w %q: names no tag or digest", ErrInvalidReference, ref)
	}
	repo, err := c.repository(r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := repo.Resolve(ctx, r.ref())
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("registry: resolving %s: %w", r, classify(err))
	}
	return desc, nil
}
