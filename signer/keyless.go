package signer

import (
	"fmt"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
)

// KeylessOptions say where the Sigstore trust root (Fulcio CA certificates,
// Rekor and CT log keys) comes from when a policy has identities. The zero
// value fetches it with TUF from the public-good instance
// (https://tuf-repo-cdn.sigstore.dev), caching under $HOME/.sigstore/root.
// It is only consulted when a signature carries a certificate.
type KeylessOptions struct {
	// TrustedRootFile is a Sigstore trusted_root.json to use instead of TUF;
	// with it, keyless verification needs no network at all. Default "".
	TrustedRootFile string
	// TUFMirror is the TUF repository URL. Default "": the public-good
	// instance.
	TUFMirror string
	// TUFRoot is the TUF root.json that anchors TUFMirror. Default nil: the
	// public-good root embedded in sigstore-go.
	TUFRoot []byte
	// TUFCacheDir is where TUF metadata is cached. Default "":
	// $HOME/.sigstore/root.
	TUFCacheDir string
}

// trustRootOnce loads the trust root at most once per verification, and
// only if a signature needs it.
type trustRootOnce struct {
	opts KeylessOptions
	once sync.Once
	tm   root.TrustedMaterial
	err  error
}

func (t *trustRootOnce) get() (root.TrustedMaterial, error) {
	t.once.Do(func() { t.tm, t.err = loadTrustRoot(t.opts) })
	return t.tm, t.err
}

// loadTrustRoot reads or fetches the Sigstore trust root.
func loadTrustRoot(o KeylessOptions) (root.TrustedMaterial, error) {
	if o.TrustedRootFile != "" {
		tr, err := root.NewTrustedRootFromPath(o.TrustedRootFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load trusted root file %s: %w", o.TrustedRootFile, err)
		}
		return tr, nil
	}
	opts := tuf.DefaultOptions()
	if o.TUFMirror != "" {
		opts.RepositoryBaseURL = o.TUFMirror
	}
	if o.TUFRoot != nil {
		opts.Root = o.TUFRoot
	}
	if o.TUFCacheDir != "" {
		opts.CachePath = o.TUFCacheDir
	}
	tr, err := root.FetchTrustedRootWithOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("TUF mirror %s not reachable: %w", opts.RepositoryBaseURL, err)
	}
	return tr, nil
}
