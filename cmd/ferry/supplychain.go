package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/release"
)

// registryFlags are the flags every command that talks to a registry takes.
type registryFlags struct {
	insecure bool
	cacheDir string
}

func (r *registryFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&r.insecure, "insecure-registry", false, "allow plain HTTP to non-loopback registries (loopback always uses plain HTTP)")
	cmd.Flags().StringVar(&r.cacheDir, "cache-dir", "", "local OCI-layout cache (default: the user cache dir)")
}

// client returns a registry client with credentials from
// FERRY_REGISTRY_USERNAME/PASSWORD/TOKEN (for the registry host in
// FERRY_REGISTRY_HOST only) and the Docker config file.
func (r *registryFlags) client() (*registry.Client, error) {
	opts := registry.Options{Insecure: r.insecure, CacheDir: r.cacheDir, UserAgent: "ferry/" + currentVersion().Version}
	creds, err := registry.EnvCredentials(os.Getenv) // only for FERRY_REGISTRY_HOST
	if err != nil {
		return nil, err
	}
	opts.Credentials = creds
	return registry.New(opts)
}

// signerRegistry gives the signer the same logins and HTTP policy.
func (r *registryFlags) signerOptions(c *registry.Client) signer.RegistryOptions {
	return signer.RegistryOptions{
		PlainHTTP:   r.insecure,
		Credentials: c.CredentialFor,
	}
}

// passwordPrompt reads a password from the terminal on stdin, or returns nil
// when stdin is not a terminal (then only FERRY_PASSWORD/COSIGN_PASSWORD
// work).
func passwordPrompt(s streams) signer.PasswordFunc {
	f, ok := s.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(confirm bool) ([]byte, error) {
		fmt.Fprint(s.err, "Enter password for private key: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.err)
		if err != nil || !confirm {
			return pw, err
		}
		fmt.Fprint(s.err, "Enter password for private key again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.err)
		if err != nil {
			return nil, err
		}
		if string(again) != string(pw) {
			return nil, errors.New("passwords do not match")
		}
		return pw, nil
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newKeygenCmd(s streams) *cobra.Command {
	var prefix string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Generate a signing key pair in cosign's format",
		Long: `keygen writes PREFIX.key (an encrypted private key in cosign's format) and
PREFIX.pub. The password comes from FERRY_PASSWORD or COSIGN_PASSWORD, or a
prompt on a terminal. The key pair works with cosign and ferry alike.`,
		Example: `  ferry keygen                       # writes cosign.key and cosign.pub
  FERRY_PASSWORD=... ferry keygen --output-prefix ci`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyPath, pubPath := prefix+".key", prefix+".pub"
			if !force {
				for _, p := range []string{keyPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return withCode(exitError, fmt.Errorf("%s already exists; nothing was written (use --force to overwrite)", p))
					}
				}
			}
			pw, err := signer.ReadPassword(passwordPrompt(s), true)
			if err != nil {
				return withCode(exitError, fmt.Errorf("no password: set FERRY_PASSWORD or COSIGN_PASSWORD, or run on a terminal: %w", err))
			}
			priv, pub, err := signer.GenerateKeyPair(pw)
			if err != nil {
				return withCode(exitError, err)
			}
			if err := writeFileAtomic(keyPath, priv); err != nil {
				return withCode(exitError, err)
			}
			if err := os.Chmod(keyPath, 0o600); err != nil {
				return withCode(exitError, err)
			}
			if err := writeFileAtomic(pubPath, pub); err != nil {
				return withCode(exitError, err)
			}
			fmt.Fprintf(s.out, "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "output-prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

// loadKey reads a private key, asking for its password as keygen does.
func loadKey(s streams, path string) (*signer.PrivateKey, error) {
	pw, err := signer.ReadPassword(passwordPrompt(s), false)
	if err != nil {
		return nil, fmt.Errorf("no password for %s: set FERRY_PASSWORD or COSIGN_PASSWORD, or run on a terminal: %w", path, err)
	}
	return signer.LoadPrivateKeyFile(path, pw)
}

func newSignCmd(s streams) *cobra.Command {
	var keyPath string
	var reg registryFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "sign REF",
		Short: "Sign an artifact in a registry (cosign .sig format)",
		Long: `sign stores a cosign signature for the manifest digest of REF, in the
sha256-<hex>.sig tag that every cosign version verifies. A tag is resolved
to its digest first, and the digest is what gets signed.`,
		Example: `  ferry sign --key cosign.key 127.0.0.1:5000/examples/hello@sha256:...
  cosign verify --key cosign.pub --insecure-ignore-tlog 127.0.0.1:5000/examples/hello@sha256:...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			key, err := loadKey(s, keyPath)
			if err != nil {
				return withCode(exitError, err)
			}
			c, err := reg.client()
			if err != nil {
				return withCode(exitError, err)
			}
			ro := reg.signerOptions(c)
			ref := args[0]
			if !strings.Contains(ref, "@") {
				resolved, err := signer.Resolve(ctx, ref, ro)
				if err != nil {
					return withCode(exitError, err)
				}
				fmt.Fprintf(s.err, "Resolved %s to %s; signing the digest.\n", ref, resolved)
				ref = resolved
			}
			res, err := signer.Sign(ctx, ref, key, signer.SignOptions{Registry: ro})
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, map[string]string{"digest": res.Digest, "signature": res.SignatureRef, "key_id": res.KeyID})
			}
			fmt.Fprintf(s.out, "Signed %s\nSignature: %s\nKey: %s\n", res.Digest, res.SignatureRef, res.KeyID)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "cosign.key", "private key file (cosign format)")
	reg.register(cmd)
	o.register(cmd)
	return cmd
}

func newVerifyCmd(s streams) *cobra.Command {
	var keys []string
	var specDir string
	var checkBlobs bool
	var reg registryFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Verify an artifact's signature against trusted keys",
		Long: `verify checks that REF is signed by one of the trusted keys (--key,
repeatable, or the trust block of the spec in --spec). Any one key is
enough, which is how keys are rotated. Unsigned or invalid is refused with
a message that says which. Verification with keys needs no network besides
the registry.`,
		Example: `  ferry verify --key cosign.pub 127.0.0.1:5000/examples/hello@sha256:...
  ferry verify --spec . --check-blobs -o json REF`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, err := trustPolicy(keys, specDir)
			if err != nil {
				return withCode(exitError, err)
			}
			c, err := reg.client()
			if err != nil {
				return withCode(exitError, err)
			}
			res, err := signer.Verify(cmd.Context(), args[0], policy, signer.VerifyOptions{Registry: reg.signerOptions(c), CheckBlobs: checkBlobs})
			if err != nil {
				if o.json() {
					writeJSON(s.out, map[string]any{"verified": false, "ref": args[0], "error": err.Error()}) //nolint:errcheck // error already reported
				}
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, map[string]any{"verified": true, "ref": res.Ref, "digest": res.Digest, "key": res.Key, "key_id": res.KeyID, "signatures": res.Signatures, "found": res.Found})
			}
			fmt.Fprintf(s.out, "Verified %s\n  digest: %s\n  signed by: %s (%s)\n  signatures: %d verified of %d found\n", res.Ref, res.Digest, res.Key, res.KeyID, res.Signatures, res.Found)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "trusted public key file (repeatable)")
	cmd.Flags().StringVar(&specDir, "spec", "", "take the trust policy from the spec in this directory")
	cmd.Flags().BoolVar(&checkBlobs, "check-blobs", false, "also download every blob and check its digest")
	reg.register(cmd)
	o.register(cmd)
	return cmd
}

// trustPolicy builds a policy from key files, or from a spec's trust block.
func trustPolicy(keys []string, specDir string) (signer.Policy, error) {
	if specDir == "" {
		if len(keys) == 0 {
			return signer.Policy{}, errors.New("no trusted keys: pass --key FILE (repeatable) or --spec DIR")
		}
		return signer.PolicyFromFiles(keys)
	}
	cfg, diags := spec.Load(specDir, spec.LoadOptions{})
	if diags.HasErrors() {
		return signer.Policy{}, fmt.Errorf("spec %s: %s", specDir, diags.Error())
	}
	if cfg.Trust == nil {
		return signer.Policy{}, fmt.Errorf("spec %s has no trust block", specDir)
	}
	var ids []signer.Identity
	for _, id := range cfg.Trust.Identities {
		ids = append(ids, signer.Identity{Issuer: id.Issuer, Subject: id.Subject, IssuerRegexp: id.IssuerRegexp, SubjectRegexp: id.SubjectRegexp})
	}
	return signer.PolicyFromFiles(append(append([]string{}, cfg.Trust.Keys...), keys...), ids...)
}

func newInspectCmd(s streams) *cobra.Command {
	var reg registryFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Show an artifact's manifest, config, layers and signatures",
		Example: `  ferry inspect 127.0.0.1:5000/examples/hello@sha256:...
  ferry inspect -o json 127.0.0.1:5000/examples/hello:latest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := reg.client()
			if err != nil {
				return withCode(exitError, err)
			}
			ins, err := c.Inspect(cmd.Context(), args[0])
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, ins)
			}
			return ins.WriteText(s.out)
		},
	}
	reg.register(cmd)
	o.register(cmd)
	return cmd
}

func newRegistryCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "registry",
		Short:   "Run the embedded OCI registry",
		Example: "  ferry registry serve --dir ./.ferry/registry --addr 127.0.0.1:5000",
	}
	var dir, addr string
	var debug bool
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve a CNCF Distribution registry with filesystem storage",
		Long: `serve runs CNCF Distribution in-process with filesystem storage in DIR,
until interrupted. It is the registry of the embedded default (ferry up).`,
		Example: `  ferry registry serve --dir ./.ferry/registry --addr 127.0.0.1:5000
  oras repo ls --plain-http 127.0.0.1:5000/examples`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(s.err, nil))
			srv, err := embedded.NewServer(cmd.Context(), embedded.Options{Dir: dir, Addr: addr, Logger: log, Debug: debug})
			if err != nil {
				return withCode(exitError, err)
			}
			fmt.Fprintf(s.out, "ferry registry: serving http://%s (storage %s)\n", srv.Addr(), dir)
			<-cmd.Context().Done()
			return srv.Close()
		},
	}
	serve.Flags().StringVar(&dir, "dir", filepath.Join(".ferry", "registry"), "storage directory")
	serve.Flags().StringVar(&addr, "addr", "127.0.0.1:5000", "listen address")
	serve.Flags().BoolVar(&debug, "debug", false, "log every request")
	cmd.AddCommand(serve)
	return cmd
}

// progressWriter returns stderr when it is a terminal (progress lines), else
// nil.
func progressWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return w
	}
	return nil
}

func newBuildCmd(s streams) *cobra.Command {
	var vars varFlags
	var o outputFlag
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build every component of the spec to a checked .wasm",
		Long: `build compiles each component (Go with GOOS=wasip1, a build command, or a
prebuilt .wasm), checks the module with wazero (valid, imports only what
ferry-host offers, has its executor's exports) and caches it by the hash of
every input: an unchanged component is never rebuilt.`,
		Example: `  ferry build
  ferry build examples/hello-go -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			opts, err := vars.options()
			if err != nil {
				return withCode(exitUsage, err)
			}
			cfg, err := loadSpec(dir, opts, s.err)
			if err != nil {
				return err
			}
			b := builder.New(builder.Options{CacheDir: cacheDir, Progress: progressWriter(s.err)})
			results, berr := b.Build(cmd.Context(), release.BuilderComponents(cfg))
			type row struct {
				Component string  `json:"component"`
				Digest    string  `json:"digest,omitempty"`
				Size      int     `json:"size"`
				Cached    bool    `json:"cached"`
				Seconds   float64 `json:"seconds"`
				Error     string  `json:"error,omitempty"`
			}
			var rows []row
			for _, r := range results {
				rw := row{Component: r.Component.ID(), Digest: r.Digest, Size: len(r.Wasm), Cached: r.Cached, Seconds: r.Duration.Seconds()}
				if r.Err != nil {
					rw.Error = r.Err.Error()
				}
				rows = append(rows, rw)
			}
			if o.json() {
				if err := writeJSON(s.out, rows); err != nil {
					return err
				}
			} else {
				for _, r := range rows {
					state := "built"
					if r.Cached {
						state = "cached"
					}
					if r.Error != "" {
						fmt.Fprintf(s.err, "%s: FAILED\n%s\n", r.Component, r.Error)
						continue
					}
					fmt.Fprintf(s.out, "%-28s %s  %7d bytes  %s in %.2fs\n", r.Component, r.Digest, r.Size, state, r.Seconds)
				}
			}
			if berr != nil {
				return withCode(exitError, errors.New("some components failed to build"))
			}
			return nil
		},
	}
	vars.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "build cache (default: the user cache dir)")
	return cmd
}

func newPushCmd(s streams) *cobra.Command {
	var vars varFlags
	var o outputFlag
	var reg registryFlags
	var repo, keyPath, buildCache string
	var apps []string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [DIR]",
		Short: "Build, push and sign every app of the spec",
		Long: `push builds every component (cached), pushes each app to the registry as
an OCI artifact (REPOSITORY/APP, one application/wasm layer per component
plus the resolved config; blobs already there are not uploaded again) and,
with --key, signs each app's digest. It prints each app's reference by
digest; with -q only that, one app a line, for scripts.`,
		Example: `  ferry push --repository 127.0.0.1:5000/examples --key cosign.key examples/hello-wat
  REF=$(ferry push -q --repository 127.0.0.1:5000/examples examples/hello-wat)
  ferry push -o json .`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			lopts, err := vars.options()
			if err != nil {
				return withCode(exitUsage, err)
			}
			c, err := reg.client()
			if err != nil {
				return withCode(exitError, err)
			}
			opts := release.ReleaseOptions{
				Load:       lopts,
				Builder:    builder.New(builder.Options{CacheDir: buildCache, Progress: progressWriter(s.err)}),
				Registry:   c,
				Repository: repo,
				Apps:       apps,
				Sign:       signer.SignOptions{Registry: reg.signerOptions(c)},
			}
			if keyPath != "" {
				if opts.Key, err = loadKey(s, keyPath); err != nil {
					return withCode(exitError, err)
				}
			}
			rel, err := release.BuildRelease(cmd.Context(), dir, "", opts)
			if rel != nil && len(rel.Diagnostics) > 0 {
				writeDiagnostics(s.err, rel.Config, rel.Diagnostics)
			}
			if rel != nil {
				if o.json() {
					writeJSON(s.out, rel.Apps) //nolint:errcheck // the error below matters more
				} else {
					for _, name := range sortedKeys(rel.Apps) {
						a := rel.Apps[name]
						if a.Err != nil {
							fmt.Fprintf(s.err, "%s: FAILED: %v\n", name, a.Err)
							continue
						}
						if quiet {
							fmt.Fprintln(s.out, a.Ref)
							continue
						}
						signed := "unsigned"
						if a.Signed {
							signed = "signed"
						}
						fmt.Fprintf(s.out, "%s  %s  (%d built, %d cached, %d blobs uploaded, %s)\n", name, a.Ref, a.Built, a.Cached, a.Uploaded, signed)
					}
				}
			}
			if err != nil {
				return withCode(exitError, err)
			}
			return nil
		},
	}
	vars.register(cmd)
	o.register(cmd)
	reg.register(cmd)
	cmd.Flags().StringVar(&repo, "repository", "", "repository prefix REGISTRY/PATH (default: the spec's registry block)")
	cmd.Flags().StringVar(&keyPath, "key", "", "sign each app with this private key (cosign format)")
	cmd.Flags().StringVar(&buildCache, "build-cache", "", "build cache (default: the user cache dir)")
	cmd.Flags().StringArrayVar(&apps, "app", nil, "push only this app (repeatable)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only each pushed app's reference by digest, one a line (failures still go to stderr)")
	cmd.MarkFlagsMutuallyExclusive("quiet", "output")
	return cmd
}

func dirArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "."
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
