package registry

import (
	"fmt"
	"net"
	"strings"

	digest "github.com/opencontainers/go-digest"
	orasreg "oras.land/oras-go/v2/registry"
)

// Reference names a repository and, optionally, a tag or digest in it:
// "HOST[:PORT]/REPO[:TAG|@DIGEST]". The zero value is not valid; get one
// from ParseReference.
type Reference struct {
	// Registry is the host and optional port ("ghcr.io", "127.0.0.1:5000").
	Registry string
	// Repository is the path inside the registry ("acme/hello").
	Repository string
	// Tag is set when the reference names a tag and no digest.
	Tag string
	// Digest is set when the reference names a digest (a tag given along
	// with a digest is dropped: the digest wins).
	Digest digest.Digest
}

// ParseReference parses "HOST[:PORT]/REPO[:TAG|@DIGEST]". The registry host
// is required (ferry never guesses "docker.io"). Errors wrap
// ErrInvalidReference and say what is wrong.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("registry: %w: empty reference (want HOST/REPO[:TAG|@DIGEST])", ErrInvalidReference)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Reference{}, fmt.Errorf("registry: %w %q: contains white space", ErrInvalidReference, s)
	}
	host, _, ok := strings.Cut(s, "/")
	if !ok || host == "" {
		return Reference{}, fmt.Errorf("registry: %w %q: missing registry host (want HOST/REPO[:TAG|@DIGEST], e.g. 127.0.0.1:5000/apps/hello:v1)", ErrInvalidReference, s)
	}
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return Reference{}, fmt.Errorf("registry: %w %q: %q is not a registry host (a host has a dot or a port, or is localhost)", ErrInvalidReference, s, host)
	}
	r, err := orasreg.ParseReference(s)
	if err != nil {
		return Reference{}, fmt.Errorf("registry: %w %q: %w", ErrInvalidReference, s, err)
	}
	ref := Reference{Registry: r.Registry, Repository: r.Repository}
	if r.Reference != "" {
		if d, err := r.Digest(); err == nil {
			ref.Digest = d
		} else {
			ref.Tag = r.Reference
		}
	}
	return ref, nil
}

// String returns the reference in its canonical text form.
func (r Reference) String() string {
	s := r.Registry + "/" + r.Repository
	switch {
	case r.Digest != "":
		return s + "@" + r.Digest.String()
	case r.Tag != "":
		return s + ":" + r.Tag
	}
	return s
}

// Repo returns "HOST/REPO" without tag or digest.
func (r Reference) Repo() string { return r.Registry + "/" + r.Repository }

// WithDigest returns "HOST/REPO@DIGEST" for the same repository.
func (r Reference) WithDigest(d digest.Digest) Reference {
	return Reference{Registry: r.Registry, Repository: r.Repository, Digest: d}
}

// WithTag returns "HOST/REPO:TAG" for the same repository.
func (r Reference) WithTag(tag string) Reference {
	return Reference{Registry: r.Registry, Repository: r.Repository, Tag: tag}
}

// ref returns the reference (tag or digest) part for oras-go calls.
func (r Reference) ref() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// IsLoopback reports whether the registry host is 127.0.0.0/8, ::1 or
// localhost — the only hosts ferry talks to over plain HTTP unless told
// otherwise.
func (r Reference) IsLoopback() bool { return isLoopbackHost(r.Registry) }

func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SignatureTag returns the tag under which cosign stores the signature of
// the manifest with digest d in the same repository: "sha256-<hex>.sig".
func SignatureTag(d digest.Digest) string { return cosignTag(d, ".sig") }

// cosignTag returns "<alg>-<hex><suffix>", cosign's tag scheme.
func cosignTag(d digest.Digest, suffix string) string {
	return d.Algorithm().String() + "-" + d.Encoded() + suffix
}
