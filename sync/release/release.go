package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	gosync "sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/targets"
)

// ReleaseOptions configure BuildRelease. Builder and Registry are required.
type ReleaseOptions struct {
	// Load is passed to spec.Load (variable values).
	Load spec.LoadOptions
	// Builder builds components (cached by input hash).
	Builder *builder.Builder
	// Registry pushes app artifacts.
	Registry *registry.Client
	// Repository is the repository prefix apps are pushed under
	// (REPOSITORY/APP). Empty means the spec's registry block.
	Repository string
	// Key signs every pushed app. Nil means apps are pushed unsigned
	// (targets that verify will refuse them).
	Key *signer.PrivateKey
	// Sign tunes signing (registry access, annotations). Its registry
	// options are also used to verify artifacts against the spec's trust
	// policy.
	Sign signer.SignOptions
	// Keyless says where the Sigstore trust root comes from when the
	// spec's trust policy lists keyless identities. Zero means the public
	// TUF root.
	Keyless signer.KeylessOptions
	// Apps restricts the release to these app names. Empty means every app
	// a target deploys, plus apps no target names.
	Apps []string
	// Secret returns the value of a secret variable. Nil means the
	// environment variable FERRY_SECRET_<NAME> (upper case).
	Secret func(name string) (string, bool)
}

// Release is the outcome of turning one spec directory (at one commit) into
// signed artifacts: per app, where it was pushed, or why it failed. One
// failing app does not stop the others.
type Release struct {
	// Commit is the commit the spec was read at (may be empty).
	Commit string
	// Config is the loaded spec; nil only when the directory could not be
	// read at all.
	Config *spec.Config
	// Diagnostics are the spec's diagnostics (warnings, or the errors that
	// stopped the release).
	Diagnostics hcl.Diagnostics
	// Apps are the released apps by name.
	Apps   map[string]*ReleasedApp
	secret func(string) (string, bool)
}

// ReleasedApp is one app of a Release.
type ReleasedApp struct {
	// Name is the app's name.
	Name string `json:"name"`
	// Ref is "REPOSITORY/APP@sha256:..." of the pushed app artifact.
	Ref string `json:"ref,omitempty"`
	// Digest is the app artifact's manifest digest.
	Digest string `json:"digest,omitempty"`
	// App is the resolved configuration as stored in the artifact.
	App deploy.App `json:"-"`
	// Builds are the component builds, in app order.
	Builds []builder.Result `json:"-"`
	// Built and Cached count components built now and found in the cache.
	Built  int `json:"built"`
	Cached int `json:"cached"`
	// Uploaded counts blobs sent to the registry (0 for an unchanged app).
	Uploaded int `json:"uploaded"`
	// Signed reports that a signature was stored for Digest.
	Signed bool `json:"signed"`
	// TrustedBy names the key (or keyless identity) of the spec's trust
	// policy that a signature on Digest verified with; empty when the spec
	// has no trust block.
	TrustedBy string `json:"trusted_by,omitempty"`
	// Err is why this app could not be released; nil on success.
	Err error `json:"-"`
}

// BuildRelease loads the spec in dir and, for each app, builds its
// components, pushes the app artifact and signs it. When the spec has a
// trust block, every pushed artifact is then verified against it (with the
// signatures in the registry, whoever made them), and an app whose artifact
// no trusted key or identity signed fails with a *TrustError (ErrUntrusted):
// it is left out of the desired state, so plan, apply, the agent and ferry
// up never hand it to a target. An invalid spec returns
// the release (with Diagnostics) and an error wrapping ErrInvalidSpec before
// anything is built. Otherwise the error joins the apps' errors; apps that
// succeeded are usable either way.
func BuildRelease(ctx context.Context, dir, commit string, opts ReleaseOptions) (*Release, error) {
	if opts.Builder == nil || opts.Registry == nil {
		return nil, errors.New("release: BuildRelease needs a Builder and a Registry client")
	}
	cfg, diags := spec.Load(dir, opts.Load)
	rel := &Release{Commit: commit, Config: cfg, Diagnostics: diags, Apps: map[string]*ReleasedApp{}, secret: opts.Secret}
	if diags.HasErrors() {
		return rel, fmt.Errorf("%w: %s", ErrInvalidSpec, firstError(diags))
	}
	repo := opts.Repository
	if repo == "" && cfg.Registry != nil {
		repo = cfg.Registry.Repository
	}
	repo = strings.TrimSuffix(repo, "/")
	if repo == "" {
		return rel, fmt.Errorf("%w: add a registry { repository = \"HOST/PATH\" } block to the spec or pass one", ErrNoRepository)
	}

	apps := selectApps(cfg, opts.Apps)
	root := repositoryRoot(ctx, dir)
	var comps []builder.Component
	for _, a := range apps {
		for _, c := range a.Components {
			bc := builderComponent(cfg, a, c)
			bc.Root = root
			comps = append(comps, bc)
		}
	}
	results, _ := opts.Builder.Build(ctx, comps) // per-result errors below
	byApp := map[string][]builder.Result{}
	for _, r := range results {
		byApp[r.Component.App] = append(byApp[r.Component.App], r)
	}

	plain := specPlainHTTP(cfg, repo)
	if plain {
		opts.Sign.Registry.PlainHTTP = true
	}
	gate := newTrustGate(cfg, signer.VerifyOptions{Registry: opts.Sign.Registry, Keyless: opts.Keyless})
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	for _, a := range apps {
		ra := &ReleasedApp{Name: a.Name, Builds: byApp[a.Name]}
		rel.Apps[a.Name] = ra
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := releaseApp(ctx, cfg, repo, plain, ra, gate, opts)
			mu.Lock()
			ra.Err = err
			mu.Unlock()
		}()
	}
	wg.Wait()

	var errs []error
	for _, a := range apps {
		if err := rel.Apps[a.Name].Err; err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", a.Name, err))
		}
	}
	return rel, errors.Join(errs...)
}

func releaseApp(ctx context.Context, cfg *spec.Config, repo string, plain bool, ra *ReleasedApp, gate *trustGate, opts ReleaseOptions) error {
	modules := map[string][]byte{}
	var errs []error
	for _, b := range ra.Builds {
		if b.Err != nil {
			errs = append(errs, b.Err)
			continue
		}
		if b.Cached {
			ra.Cached++
		} else {
			ra.Built++
		}
		modules[b.Component.Name] = b.Wasm
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	app, ok := cfg.DeployApp(ra.Name)
	if !ok {
		return fmt.Errorf("app %q vanished from the spec", ra.Name)
	}
	files, err := collectFiles(absDir(cfg.Dir), app)
	if err != nil {
		return err
	}
	res, err := opts.Registry.PushApp(ctx, repo+"/"+ra.Name, app, modules, registry.PushOptions{Pack: registry.PackOptions{Files: files}, PlainHTTP: plain})
	if err != nil {
		return fmt.Errorf("push: %w", plainHTTPHint(err, repo))
	}
	ra.Ref, ra.Digest, ra.App, ra.Uploaded = res.Ref, res.Digest.String(), res.App, res.Uploaded
	if opts.Key != nil {
		if _, err := signer.Sign(ctx, res.Ref, opts.Key, opts.Sign); err != nil {
			return fmt.Errorf("sign: %w", plainHTTPHint(err, repo))
		}
		ra.Signed = true
	}
	by, err := gate.check(ctx, ra.Name, res.Ref)
	if err != nil {
		return err
	}
	ra.TrustedBy = by
	return nil
}

// specPlainHTTP reports whether the spec's registry block allows plain
// HTTP for repo: it says insecure = true and repo is on the same registry
// host as the block's repository. Loopback hosts use plain HTTP anyway (the
// registry client's rule, as Docker's), and the CLI's --insecure-registry
// allows it for every host; this is how a spec asks for it for its own
// registry without a flag.
func specPlainHTTP(cfg *spec.Config, repo string) bool {
	if cfg == nil || cfg.Registry == nil || !cfg.Registry.Insecure {
		return false
	}
	return registryHost(cfg.Registry.Repository) == registryHost(repo)
}

// registryHost returns the host[:port] part of a repository, lower case.
func registryHost(repo string) string {
	h, _, _ := strings.Cut(repo, "/")
	return strings.ToLower(h)
}

// ErrPlainHTTPRegistry is wrapped by a push or sign error when the
// registry answered an HTTPS request with plain HTTP: it serves plain HTTP
// only, and nothing allowed that for its host. Retrying cannot help; set
// insecure = true in the spec's registry block (or pass
// --insecure-registry), or serve the registry over HTTPS.
var ErrPlainHTTPRegistry = errors.New("registry serves plain HTTP, and plain HTTP is not allowed for it")

// plainHTTPHint wraps err with ErrPlainHTTPRegistry and what to do when it
// is net/http's "server gave HTTP response to HTTPS client".
func plainHTTPHint(err error, repo string) error {
	if err == nil || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return err
	}
	return fmt.Errorf("%w: %s answered an HTTPS request with plain HTTP; if it is meant to serve plain HTTP, set insecure = true in the spec's registry block (or pass --insecure-registry): %w",
		ErrPlainHTTPRegistry, registryHost(repo), err)
}

// collectFiles reads the declared files of every component of app from
// the spec directory dir into an in-memory tree per component (nil when no
// component declares files). A declared directory brings its whole
// subtree. Symbolic links are followed when they stay inside dir; one that
// leads outside (or loops) is refused, naming it. At most
// registry.DefaultMaxFilesBytes are read per component.
func collectFiles(dir string, app deploy.App) (map[string]fs.FS, error) {
	var out map[string]fs.FS
	for _, c := range app.Components {
		if len(c.Files) == 0 {
			continue
		}
		fc, err := newFileCollector(dir)
		if err != nil {
			return nil, err
		}
		for _, f := range c.Files {
			if err := fc.add(filepath.ToSlash(filepath.Clean(filepath.FromSlash(f))), nil); err != nil {
				return nil, fmt.Errorf("component %s: files: %w", c.Name, err)
			}
		}
		tree, err := registry.NewFileTree(fc.files)
		if err != nil {
			return nil, fmt.Errorf("component %s: files: %w", c.Name, err)
		}
		if out == nil {
			out = map[string]fs.FS{}
		}
		out[c.Name] = tree
	}
	return out, nil
}

// fileCollector gathers files below one spec directory.
type fileCollector struct {
	dir, real string            // the spec directory as given and with symlinks resolved
	files     map[string][]byte // by slash path; directories end in "/"
	size      int64
}

func newFileCollector(dir string) (*fileCollector, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("spec directory: %w", err)
	}
	return &fileCollector{dir: dir, real: real, files: map[string][]byte{}}, nil
}

// add collects rel (a slash path relative to the spec directory) under
// the same name; stack holds the real paths of the directories being
// walked, to catch symbolic link loops.
func (fc *fileCollector) add(rel string, stack []string) error {
	if rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(filepath.FromSlash(rel)) {
		return fmt.Errorf("%q leaves the spec directory", rel)
	}
	full := filepath.Join(fc.dir, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%q does not exist (files are read from the spec directory %s)", rel, fc.dir)
		}
		return err
	}
	if r, err := filepath.Rel(fc.real, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%q is a symbolic link to %s, outside the spec directory", rel, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if slices.Contains(stack, real) {
			return fmt.Errorf("%q is a symbolic link loop (it leads back to %s)", rel, real)
		}
		ents, err := os.ReadDir(real)
		if err != nil {
			return err
		}
		if rel != "." {
			fc.files[rel+"/"] = nil
		}
		for _, e := range ents {
			if err := fc.add(path.Join(rel, e.Name()), append(stack, real)); err != nil {
				return err
			}
		}
	case fi.Mode().IsRegular():
		if fc.size += fi.Size(); fc.size > registry.DefaultMaxFilesBytes {
			return fmt.Errorf("%w: more than %d bytes (at %q)", registry.ErrFilesTooLarge, registry.DefaultMaxFilesBytes, rel)
		}
		b, err := os.ReadFile(real)
		if err != nil {
			return err
		}
		fc.files[rel] = b
	default:
		return fmt.Errorf("%q is neither a regular file nor a directory", rel)
	}
	return nil
}

// selectApps returns the spec's apps, restricted to names when given.
func selectApps(cfg *spec.Config, names []string) []*spec.App {
	if len(names) == 0 {
		return cfg.Apps
	}
	var out []*spec.App
	for _, a := range cfg.Apps {
		for _, n := range names {
			if a.Name == n {
				out = append(out, a)
			}
		}
	}
	return out
}

// BuilderComponents returns the builder's input for every component of
// every app in cfg, in spec order.
func BuilderComponents(cfg *spec.Config) []builder.Component {
	var comps []builder.Component
	for _, a := range cfg.Apps {
		for _, c := range a.Components {
			comps = append(comps, builderComponent(cfg, a, c))
		}
	}
	return comps
}

// builderComponent maps a spec component to the builder's input.
func builderComponent(cfg *spec.Config, a *spec.App, c *spec.Component) builder.Component {
	bc := builder.Component{App: a.Name, Name: c.Name, Dir: absDir(cfg.Dir), Root: repoRootOf(cfg.Dir), Executor: string(c.Executor)}
	switch c.Source.Kind {
	case spec.SourceGo:
		bc.Kind, bc.GoPackage = builder.KindGo, c.Source.GoPackage
	case spec.SourceBuild:
		bc.Kind, bc.Command, bc.Workdir, bc.Output = builder.KindCommand, c.Source.Command, c.Source.Workdir, c.Source.Output
		for _, w := range c.Source.Watch {
			if rel, ok := strings.CutPrefix(w, strings.TrimSuffix(c.Source.Workdir, "/")+"/"); ok {
				w = rel
			}
			bc.Watch = append(bc.Watch, w)
		}
	case spec.SourceWasm:
		bc.Kind, bc.Wasm = builder.KindWasm, c.Source.Wasm
	}
	return bc
}

// Desired returns the desired state of every target in the spec (or of the
// named ones): each target's apps pinned to the released digests. An app
// that failed to release is left out of its targets and listed in Kept, so
// the plan leaves whatever runs there alone instead of pruning it.
func (r *Release) Desired(targetNames ...string) plan.Desired {
	d := plan.Desired{Commit: r.Commit}
	if r.Config == nil {
		return d
	}
	for _, t := range r.Config.Targets {
		if len(targetNames) > 0 && !contains(targetNames, t.Name) {
			continue
		}
		dt := plan.DesiredTarget{Name: t.Name, Type: string(t.Type)}
		for _, name := range t.Apps {
			ra := r.Apps[name]
			if ra == nil || ra.Err != nil || ra.Digest == "" {
				dt.Keep = append(dt.Keep, name)
				continue
			}
			dt.Apps = append(dt.Apps, targets.DesiredApp{
				Name: name, Ref: ra.Ref, Digest: ra.Digest, App: ra.App,
				Secrets: r.secretsFor(ra.App),
			})
		}
		sort.Strings(dt.Keep)
		d.Targets = append(d.Targets, dt)
	}
	return d
}

// secretsFor returns the values of the secret variables app uses.
func (r *Release) secretsFor(app deploy.App) map[string]string {
	lookup := r.secret
	if lookup == nil {
		lookup = func(name string) (string, bool) { return os.LookupEnv("FERRY_SECRET_" + strings.ToUpper(name)) }
	}
	var out map[string]string
	for name, v := range app.Variables {
		if !v.Secret {
			continue
		}
		if val, ok := lookup(name); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = val
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func firstError(diags hcl.Diagnostics) string {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			if d.Subject != nil {
				return fmt.Sprintf("%s: %s", d.Subject.String(), d.Summary)
			}
			return d.Summary
		}
	}
	return "unknown error"
}

// absDir returns dir as an absolute path (dir itself if that fails).
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// RoundInput converts a release into what the agent deploys: the desired
// state of every target, the spec, its diagnostics and the per-app errors.
func (r *Release) RoundInput() *RoundInput {
	in := &RoundInput{Desired: r.Desired(), Config: r.Config, Diagnostics: r.Diagnostics}
	for name, a := range r.Apps {
		if a.Err != nil {
			if in.AppErrors == nil {
				in.AppErrors = map[string]error{}
			}
			in.AppErrors[name] = a.Err
		}
	}
	return in
}

// SpecReleaser returns the agent's Releaser for a spec repository: each commit is
// released with BuildRelease and opts.
func SpecReleaser(opts ReleaseOptions) ReleaserFunc {
	return func(ctx context.Context, dir, commit string) (*RoundInput, error) {
		rel, err := BuildRelease(ctx, dir, commit, opts)
		if rel == nil {
			return nil, err
		}
		if errors.Is(err, ErrNoRepository) {
			return nil, err
		}
		return rel.RoundInput(), nil
	}
}

// SpecDirs returns dir itself when it holds *.hcl files, else every
// directory below it that does (skipping hidden and testdata directories),
// sorted. It lets one repository hold several independent specs, as
// examples/ does.
func SpecDirs(dir string) ([]string, error) {
	if m, _ := filepath.Glob(filepath.Join(dir, "*.hcl")); len(m) > 0 {
		return []string{dir}, nil
	}
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if m, _ := filepath.Glob(filepath.Join(p, "*.hcl")); len(m) > 0 {
			dirs = append(dirs, p)
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(dirs)
	return dirs, err
}

// LocalReleaser returns a Releaser for a local development loop (ferry up):
// it releases every spec directory under the checked-out path (see
// SpecDirs), ignores the specs' own targets, and puts every app on one host
// target named target, and also on each fleet target of fleets (ferry up's
// devices, one fleet of every enrolled device with policy fleetPolicy). The
// merged Config it returns has just those targets, so the agent's
// TargetsFunc only needs to know them.
func LocalReleaser(opts ReleaseOptions, target string, fleets ...LocalFleet) ReleaserFunc {
	return func(ctx context.Context, dir, commit string) (*RoundInput, error) {
		dirs, err := SpecDirs(dir)
		if err != nil {
			return nil, err
		}
		merged := &spec.Config{Dir: dir, Files: map[string]*hcl.File{}}
		in := &RoundInput{Config: merged}
		dt := plan.DesiredTarget{Name: target, Type: string(spec.TargetHost)}
		seen := map[string]string{}
		for _, d := range dirs {
			rel, err := BuildRelease(ctx, d, commit, opts)
			if rel == nil || errors.Is(err, ErrNoRepository) {
				return nil, err
			}
			in.Diagnostics = append(in.Diagnostics, rel.Diagnostics...)
			if rel.Config == nil {
				continue
			}
			for name, f := range rel.Config.Files {
				merged.Files[name] = f
			}
			for _, a := range rel.Config.Apps {
				if other, dup := seen[a.Name]; dup {
					rng := a.DeclRange
					in.Diagnostics = append(in.Diagnostics, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate app",
						Detail:  fmt.Sprintf("App %q is also declared in %s; app names must be unique across the specs that ferry up serves.", a.Name, other),
						Subject: &rng})
					continue
				}
				seen[a.Name] = d
				merged.Apps = append(merged.Apps, a)
				ra := rel.Apps[a.Name]
				if ra == nil {
					continue
				}
				if ra.Err != nil || ra.Digest == "" {
					if in.AppErrors == nil {
						in.AppErrors = map[string]error{}
					}
					if ra.Err != nil {
						in.AppErrors[a.Name] = ra.Err
					}
					dt.Keep = append(dt.Keep, a.Name)
					continue
				}
				dt.Apps = append(dt.Apps, targets.DesiredApp{Name: a.Name, Ref: ra.Ref, Digest: ra.Digest, App: ra.App, Secrets: rel.secretsFor(ra.App)})
			}
		}
		var names []string
		for _, a := range merged.Apps {
			names = append(names, a.Name)
		}
		merged.Targets = []*spec.Target{{Name: target, Type: spec.TargetHost, Apps: names, Host: &spec.HostTarget{}}}
		in.Desired = plan.Desired{Commit: commit, Targets: []plan.DesiredTarget{dt}}
		for _, f := range fleets {
			merged.Targets = append(merged.Targets, &spec.Target{Name: f.Name, Type: spec.TargetFleet, Apps: names, Fleet: f.Fleet})
			ft := plan.DesiredTarget{Name: f.Name, Type: string(spec.TargetFleet), Apps: slices.Clone(dt.Apps), Keep: slices.Clone(dt.Keep)}
			in.Desired.Targets = append(in.Desired.Targets, ft)
		}
		return in, nil
	}
}

// LocalFleet is a fleet target that LocalReleaser puts every app on.
type LocalFleet struct {
	// Name is the target's name.
	Name string
	// Fleet is its selector and rollout policy.
	Fleet *spec.FleetTarget
}
