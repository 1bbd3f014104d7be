package hostimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferry-wasm/ferry/registry/credential"
)

// Sentinel errors; every error of the package wraps one.
var (
	// ErrBuild means compiling ferry-host failed (the go tool's output is
	// in the message). Retrying helps only after the source is fixed.
	ErrBuild = errors.New("building ferry-host")
	// ErrInvalid means the options or a reference are not usable.
	ErrInvalid = errors.New("invalid image options")
	// ErrPush means the registry refused or could not be reached;
	// retrying can help.
	ErrPush = errors.New("pushing the image")
)

const (
	// Entrypoint is the binary's path in the image.
	Entrypoint = "/ferry-host"
	// User is the image's user (uid:gid); nothing in the image needs root.
	User = "65532:65532"
	// Package is the Go package Build compiles, relative to Options.Dir.
	Package = "./cmd/ferry-host"
)

// Platform is one OS/architecture of the index.
type Platform struct {
	OS, Arch, Variant string
}

// String is "os/arch" or "os/arch/variant".
func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform parses "linux/arm/v7".
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("%w: platform %q: want os/arch or os/arch/variant", ErrInvalid, s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// goEnv is the GOOS/GOARCH/GOARM environment for p.
func (p Platform) goEnv() ([]string, error) {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch}
	switch {
	case p.Arch == "arm" && strings.HasPrefix(p.Variant, "v"):
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	case p.Variant != "" && p.Arch != "arm64":
		return nil, fmt.Errorf("%w: platform %s: only arm takes a variant (v6, v7)", ErrInvalid, p)
	}
	return env, nil
}

// DefaultPlatforms are the platforms of the published image.
var DefaultPlatforms = []Platform{{"linux", "amd64", ""}, {"linux", "arm64", ""}, {"linux", "arm", "v7"}}

// Options configure Build and Assemble. The zero value of each field is
// its default.
type Options struct {
	// Dir is the ferry module's root (where go.mod is). Default: the
	// working directory.
	Dir string
	// Platforms default to DefaultPlatforms; their order is the index's.
	Platforms []Platform
	// Go is the go command (default "go" on PATH).
	Go string
	// Created is every timestamp in the image (default the Unix epoch).
	Created time.Time
	// Annotations are set on the index (e.g.
	// org.opencontainers.image.version). Default none.
	Annotations map[string]string
	// Logger gets one line per platform built. Nil discards.
	Logger *slog.Logger
}

func (o Options) platforms() []Platform {
	if len(o.Platforms) == 0 {
		return DefaultPlatforms
	}
	return o.Platforms
}

func (o Options) created() time.Time {
	if o.Created.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return o.Created.UTC().Truncate(time.Second)
}

// Build compiles ferry-host for every platform and assembles the index.
func Build(ctx context.Context, opts Options) (v1.ImageIndex, error) {
	bins, err := Binaries(ctx, opts)
	if err != nil {
		return nil, err
	}
	return Assemble(bins, opts)
}

// Binaries compiles a static ferry-host for each platform, in parallel
// only as far as the go tool parallelises itself, and returns the
// binaries by platform.
func Binaries(ctx context.Context, opts Options) (map[Platform][]byte, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	goCmd := opts.Go
	if goCmd == "" {
		goCmd = "go"
	}
	tmp, err := os.MkdirTemp("", "ferry-hostimage-")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBuild, err)
	}
	defer os.RemoveAll(tmp)
	out := map[Platform][]byte{}
	for _, p := range opts.platforms() {
		env, err := p.goEnv()
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(tmp, strings.ReplaceAll(p.String(), "/", "-"))
		start := time.Now()
		cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, Package)
		cmd.Dir = opts.Dir
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly"), env...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%w for %s: %w\n%s", ErrBuild, p, err, bytes.TrimSpace(msg))
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBuild, err)
		}
		log.Info("built ferry-host", "platform", p.String(), "bytes", len(b), "took", time.Since(start).Round(time.Millisecond))
		out[p] = b
	}
	return out, nil
}

// Layer is the image layer holding bin as /ferry-host (mode 0755, owner
// 0:0, mtime created), gzipped, with the OCI layer media type.
func Layer(bin []byte, created time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(Entrypoint, "/"), Mode: 0o755, Size: int64(len(bin)),
		ModTime: created, Uid: 0, Gid: 0, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithCompressedCaching)
}

// Image is the single-platform image of bin for p.
func Image(p Platform, bin []byte, created time.Time) (v1.Image, error) {
	layer, err := Layer(bin, created)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	cfg := &v1.ConfigFile{
		Created:      v1.Time{Time: created},
		OS:           p.OS,
		Architecture: p.Arch,
		Variant:      p.Variant,
		Config: v1.Config{
			Entrypoint: []string{Entrypoint},
			User:       User,
			WorkingDir: "/",
			Env:        []string{"PATH=/"},
			Labels:     map[string]string{"org.opencontainers.image.title": "ferry-host"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(base, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "ferry image: " + Entrypoint + " (" + p.String() + ")"}})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return img, nil
}

// Assemble makes the multi-arch index of bins (one image per platform, in
// opts.Platforms order). It is pure: the same binaries and options give
// the same index digest.
func Assemble(bins map[Platform][]byte, opts Options) (v1.ImageIndex, error) {
	created := opts.created()
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range opts.platforms() {
		bin, ok := bins[p]
		if !ok {
			return nil, fmt.Errorf("%w: no binary for %s", ErrInvalid, p)
		}
		img, err := Image(p, bin, created)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Platform:  &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant},
		}})
	}
	if len(opts.Annotations) > 0 {
		idx = mutate.Annotations(idx, opts.Annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// PushOptions say how Push reaches the registry. The zero value is HTTPS
// (plain HTTP for loopback registries) with the Docker config's logins.
type PushOptions struct {
	// PlainHTTP talks http:// to any registry.
	PlainHTTP bool
	// Credentials gives the login per registry host (ferry passes
	// registry.Client.CredentialFor). Nil: the Docker config file.
	Credentials credential.Func
	// Transport is the HTTP transport (default http.DefaultTransport).
	Transport http.RoundTripper
}

// Push writes idx and its images to repo[:tag] (a tag is set when given)
// and returns "REPO@sha256:<hex>" of the index.
func Push(ctx context.Context, idx v1.ImageIndex, repo string, opts PushOptions) (string, error) {
	var nopts []name.Option
	if opts.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(repo, nopts...)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalid, repo, err)
	}
	if _, isDigest := ref.(name.Digest); isDigest {
		return "", fmt.Errorf("%w: %q: push to REPO or REPO:TAG, not a digest", ErrInvalid, repo)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain{ctx, opts.Credentials})}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	// With no tag given, push by digest only (nothing moves).
	target := name.Reference(ref.Context().Digest(d.String()))
	if strings.Contains(strings.TrimPrefix(repo, ref.Context().RegistryStr()), ":") {
		target = ref
	}
	if err := remote.WriteIndex(target, idx, ropts...); err != nil {
		return "", fmt.Errorf("%w to %s: %w", ErrPush, target, err)
	}
	return ref.Context().Name() + "@" + d.String(), nil
}

// keychain adapts a credential.Func (nil: the Docker config) to ggcr.
type keychain struct {
	ctx context.Context
	fn  credential.Func
}

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.fn == nil {
		return authn.DefaultKeychain.Resolve(r)
	}
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
