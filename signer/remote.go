package signer

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"

	"github.com/ferry-wasm/ferry/registry/credential"
)

// RegistryOptions say how to reach the registry. The zero value uses HTTPS
// with certificate checks (plain HTTP for localhost, 127.0.0.0/8 and ::1, as
// go-containerregistry does) and credentials from the Docker config file.
type RegistryOptions struct {
	// PlainHTTP talks http:// to the registry. Default false: https://,
	// except for loopback addresses.
	PlainHTTP bool
	// Insecure skips TLS certificate verification. Default false.
	Insecure bool
	// Credentials supplies the login per registry host; ferry passes the
	// registry client's lookup (registry.Client.CredentialFor), so the
	// signer uses exactly the logins the pushes and pulls use. Default nil:
	// the Docker config file (~/.docker/config.json and its credential
	// helpers), read by go-containerregistry.
	Credentials credential.Func
	// Transport is the HTTP transport. Default nil: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

func (o RegistryOptions) nameOptions() []name.Option {
	if o.PlainHTTP {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o RegistryOptions) transport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if o.Insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the caller
	}
	return t
}

func (o RegistryOptions) keychain(ctx context.Context) authn.Keychain {
	if o.Credentials == nil {
		return authn.DefaultKeychain
	}
	return credKeychain{ctx: ctx, fn: o.Credentials}
}

// remoteOptions are the go-containerregistry options for one operation.
func (o RegistryOptions) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain(ctx)),
		remote.WithTransport(o.transport()),
	}
}

// ociOptions are cosign's registry options for one operation.
func (o RegistryOptions) ociOptions(ctx context.Context) []ociremote.Option {
	return []ociremote.Option{
		ociremote.WithRemoteOptions(o.remoteOptions(ctx)...),
		ociremote.WithNameOptions(o.nameOptions()...),
	}
}

type credKeychain struct {
	ctx context.Context
	fn  credential.Func
}

func (k credKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	c, err := k.fn(k.ctx, r.RegistryStr())
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.RegistryStr(), err)
	}
	if c.IsZero() {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password,
		RegistryToken: c.Token, IdentityToken: c.IdentityToken}), nil
}

// parseRef parses an artifact reference.
func parseRef(ref string, ro RegistryOptions) (name.Reference, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, fmt.Errorf("%w: empty reference", ErrInvalidReference)
	}
	r, err := name.ParseReference(ref, ro.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, ref, err)
	}
	return r, nil
}

// registryError classifies an error from go-containerregistry.
func registryError(what string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrRegistry, what, err)
}

// manifestAccept lists the manifest media types a fetch accepts.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ", ")

// maxManifestSize bounds what a manifest fetch reads (OCI recommends 4 MiB).
const maxManifestSize = 4 << 20

// fetcher makes raw registry requests for one repository, so that this
// package checks digests itself and can say precisely what did not match.
type fetcher struct {
	repo   name.Repository
	client *http.Client
}

func newFetcher(ctx context.Context, repo name.Repository, ro RegistryOptions) (*fetcher, error) {
	auth, err := authn.Resolve(ctx, ro.keychain(ctx), repo)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRegistry, err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, ro.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, registryError("connecting to "+repo.RegistryStr(), err)
	}
	return &fetcher{repo: repo, client: &http.Client{Transport: rt}}, nil
}

func (f *fetcher) url(kind, id string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", f.repo.Scheme(), f.repo.RegistryStr(), f.repo.RepositoryStr(), kind, id)
}

func (f *fetcher) get(ctx context.Context, kind, id, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url(kind, id), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRegistry, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s %s: %v", ErrRegistry, kind, id, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp, nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s@%s (%s)", ErrNotFound, f.repo.Name(), id, strings.TrimSuffix(kind, "s"))
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: GET %s %s: %s", ErrRegistry, kind, id, resp.Status)
	}
}

// manifest fetches a manifest by tag or digest and returns its bytes and the
// digest they hash to. Fetching by digest checks that the content matches.
func (f *fetcher) manifest(ctx context.Context, id string) (body []byte, mediaType string, dgst v1.Hash, err error) {
	resp, err := f.get(ctx, "manifests", id, manifestAccept)
	if err != nil {
		return nil, "", v1.Hash{}, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", v1.Hash{}, fmt.Errorf("%w: reading manifest %s: %v", ErrRegistry, id, err)
	}
	if len(body) > maxManifestSize {
		return nil, "", v1.Hash{}, fmt.Errorf("%w: manifest %s is larger than %d bytes", ErrRegistry, id, maxManifestSize)
	}
	sum := sha256.Sum256(body)
	dgst = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if want, perr := v1.NewHash(id); perr == nil && want != dgst {
		return nil, "", v1.Hash{}, fmt.Errorf("%w: the registry served a manifest for %s whose content hashes to %s: the manifest was changed", ErrDigestMismatch, want, dgst)
	}
	return body, resp.Header.Get("Content-Type"), dgst, nil
}

// blob downloads a blob and checks that it hashes to want.
func (f *fetcher) blob(ctx context.Context, want v1.Hash, what string) error {
	if want.Algorithm != "sha256" {
		return fmt.Errorf("%w: %s: unsupported digest algorithm", ErrDigestMismatch, what)
	}
	resp, err := f.get(ctx, "blobs", want.String(), "")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return fmt.Errorf("%w: reading %s: %v", ErrRegistry, what, err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if got != want {
		return fmt.Errorf("%w: %s: content served hashes to %s: the blob was changed", ErrDigestMismatch, what, got)
	}
	return nil
}
