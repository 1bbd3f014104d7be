package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/ferry-wasm/ferry/internal/httproute"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/registry/embedded"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
	"github.com/ferry-wasm/ferry/targets/host"
	"github.com/ferry-wasm/ferry/targets/host/control"
	"github.com/ferry-wasm/ferry/targets/host/core"
	"github.com/ferry-wasm/ferry/targets/host/driver"
)

// upOptions are the flags of `ferry up`.
type upOptions struct {
	dataDir                                  string
	appsAddr, controlAddr, registryAddr, api string
	deviceAddr                               string
	branch                                   string
	interval                                 time.Duration
	logs                                     logFlags
	notes                                    notifyFlags
	dash                                     dashboardFlags
}

func newUpCmd(s streams) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up [DIR]",
		Short: "Run everything locally: embedded registry, ferry-host and an agent watching DIR",
		Long: `up is ferry's embedded default. It starts, in one process:
  - an OCI registry (CNCF Distribution, stored in DATA-DIR/registry),
  - a ferry-host serving every app, built as ferry-host builds itself (it
    verifies every signature itself, probes each app's health path on its
    health interval and rolls a version that turns unhealthy within its
    bake back by itself, and serves its metrics at /metrics on the host
    API),
  - an agent watching the git repository that holds DIR (DIR is made a
    repository, with a first commit, when it is not in one).
A signing key is generated on first use (DATA-DIR/cosign.key). Every spec
directory under DIR is deployed to the local host; the specs' own targets
and registry blocks are ignored here (ferry agent uses them). Commit a change
and it serves within about a second: the agent watches the repository's
branch ref and starts a round as soon as it moves (and polls every
--interval besides); ferry status and ferry history show what happened.

DATA-DIR defaults to .ferry/up in the root of the git work tree that holds
DIR, whatever the current directory, so a restart from anywhere serves the
same apps at once and ferry status, run anywhere in the work tree, finds
this agent. ferry up writes a .gitignore there that ignores the directory.

An app whose spec declares no hosts answers every host name that no other
app claims (it is the host's default app); ferry status names it.

The dashboard is at the agent's address (printed first); log in with the
token in DATA-DIR/agent.token, or read-only with --viewer-token-file.
--notify-webhook, --notify-secret-file and --notify-slack work as for
ferry agent.`,
		Example: `  ferry up examples          # what make run does
  ferry up --apps-addr 127.0.0.1:9080 .
  curl -H 'Host: hello-wat.localhost' http://127.0.0.1:8080/`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := o.logs.logger(s)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if err := upLoopbackOnly(o.controlAddr); err != nil {
				return withCode(exitUsage, err)
			}
			if o.deviceAddr != "" {
				if err := upLoopbackOnly(o.deviceAddr); err != nil {
					return withCode(exitUsage, fmt.Errorf("--device-addr: %w (run ferry agent with --device-tls-cert to serve devices elsewhere)", err))
				}
			}
			if err := runUp(cmd.Context(), s, log, dirArg(args), o); err != nil {
				return withCode(exitError, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", "registry storage, host state, agent history and keys (default: .ferry/up in the root of DIR's git work tree)")
	cmd.Flags().StringVar(&o.appsAddr, "apps-addr", "127.0.0.1:8080", "address the apps are served on")
	cmd.Flags().StringVar(&o.controlAddr, "control-addr", "127.0.0.1:8081", "address of the host's control API")
	cmd.Flags().StringVar(&o.registryAddr, "registry-addr", "127.0.0.1:5000", "address of the embedded registry")
	cmd.Flags().StringVar(&o.api, "agent-addr", "127.0.0.1:8082", "address of the agent's status API and metrics")
	cmd.Flags().StringVar(&o.deviceAddr, "device-addr", "127.0.0.1:8083", `address of the fleet device API, loopback only ("" turns the local fleet off)`)
	cmd.Flags().StringVar(&o.branch, "branch", "", "branch to deploy (default: the branch checked out in DIR's repository)")
	cmd.Flags().DurationVar(&o.interval, "interval", 2*time.Second, "how often the agent looks for new commits besides watching the branch ref")
	o.logs.register(cmd)
	o.notes.register(cmd)
	o.dash.register(cmd)
	return cmd
}

func runUp(ctx context.Context, s streams, log *slog.Logger, dir string, o upOptions) error {
	root, rel, branch, err := upRepository(dir, o.branch, s.out)
	if err != nil {
		return err
	}
	if o.dataDir, err = upDataDir(o.dataDir, root); err != nil {
		return err
	}
	key, pubPath, err := upSigningKey(o.dataDir, s.out)
	if err != nil {
		return err
	}
	hostToken, err := upSecret(filepath.Join(o.dataDir, "host.token"))
	if err != nil {
		return err
	}
	agentTokenFile := filepath.Join(o.dataDir, "agent.token")
	agentToken, err := upSecret(agentTokenFile)
	if err != nil {
		return err
	}
	viewer, err := o.dash.viewerToken()
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	notifier, err := o.notes.notifier(log, metrics)
	if err != nil {
		return err
	}
	startNotifier(ctx, notifier, log)
	var bus eventBus

	// 1. The registry. Reads are anonymous (the host pulls); writes need a
	// login only this process knows (its own pushes and signatures).
	regPassword, err := upSecret(filepath.Join(o.dataDir, "registry.password"))
	if err != nil {
		return err
	}
	regLogin := embedded.Login{Username: "ferry-up", Password: regPassword}
	reg, err := embedded.NewServer(ctx, embedded.Options{Dir: filepath.Join(o.dataDir, "registry"), Addr: o.registryAddr,
		Logger: log.With("component", "registry"), WriteLogin: &regLogin})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer reg.Close()

	// 2. The host: runtime, state, control API; it trusts only the local key.
	appsURL, ctlURL, stopHost, err := upHost(ctx, log, o, pubPath, hostToken)
	if err != nil {
		return err
	}
	defer stopHost()

	// 3. The agent.
	rc, err := registry.New(registry.Options{CacheDir: filepath.Join(o.dataDir, "oci-cache"), NoDockerConfig: true, Logger: log.With("component", "registry-client"),
		Credentials: map[string]registry.Credential{reg.Addr(): {Username: regLogin.Username, Password: regLogin.Password}}})
	if err != nil {
		return err
	}
	hostClient, err := driver.NewClient(ctlURL, hostToken, driver.ClientOptions{})
	if err != nil {
		return err
	}
	ropts := release.ReleaseOptions{
		Builder:    builder.New(builder.Options{CacheDir: filepath.Join(o.dataDir, "build-cache"), Logger: log.With("component", "builder")}),
		Registry:   rc,
		Repository: reg.Addr() + "/up",
		Key:        key,
		Sign: signer.SignOptions{Registry: signer.RegistryOptions{
			Credentials: rc.CredentialFor, // the login for reg.Addr() only
		}},
	}
	// 4. The local fleet: every device that enrolls gets every app.
	tgs := map[string]targets.Target{"local": hostClient}
	var fleets []release.LocalFleet
	var fleetRoutes func(*httproute.Mux)
	var hubs *hub.Hub
	deviceURL := ""
	if o.deviceAddr != "" {
		df := deviceFlags{listen: o.deviceAddr, onEvent: bus.fleetEvent}
		if notifier != nil {
			df.onEvent = both(fleetNotify(notifier.Publish), bus.fleetEvent)
		}
		h, u, err := df.start(ctx, filepath.Join(o.dataDir, "fleet"), log.With("component", "fleet"))
		if err != nil {
			return err
		}
		ft := upFleet()
		ctl, err := h.FleetTarget("devices", ft)
		if err != nil {
			return err
		}
		tgs["devices"], deviceURL, fleetRoutes, hubs = ctl, u, h.Routes, h
		fleets = append(fleets, release.LocalFleet{Name: "devices", Fleet: ft})
	}
	a, err := agent.NewAgent(agent.Options{
		Repo: root, Branch: branch, Path: rel, Interval: o.interval, MaxBackoff: 30 * time.Second,
		DataDir:  filepath.Join(o.dataDir, "agent"),
		Releaser: release.LocalReleaser(ropts, "local", fleets...),
		Targets: func(context.Context, *spec.Config) (map[string]targets.Target, error) {
			return tgs, nil
		},
		ExtraRoutes: fleetRoutes,
		APIToken:    agentToken,
		Logger:      log.With("component", "agent"),
		Metrics:     metrics,
		Notify:      notifier.Publisher(),
		Apply:       plan.ApplyOptions{LockDir: filepath.Join(o.dataDir, "locks")},
		// The host is this process's own: it holds only this spec's apps,
		// so apps recorded before owners were are adopted, not refused.
		Plan: plan.PlanOptions{Source: plan.SourceID(root, rel), Adopt: true},
	})
	if err != nil {
		return err
	}
	defer a.Close()
	bus.attach(a.Publish)
	if hubs != nil {
		bus.publishDevices(ctx, hubs, 250*time.Millisecond)
	}
	ui, err := newDashboard(a, hubs, agentToken, viewer, log)
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", o.api)
	if err != nil {
		return fmt.Errorf("--agent-addr: %w", err)
	}
	serveAgentAPI(ctx, a, ui, apiLn)
	agentURL := "http://" + apiLn.Addr().String()
	if err := writeUpInfo(o.dataDir, agentURL, agentTokenFile); err != nil {
		return err
	}

	refs, err := newRefWatch(root, branch)
	if err != nil {
		return err
	}
	go refs.run(ctx, refWatchPoll, func() { a.Wake("git:ref") })

	fmt.Fprintf(s.out, "ferry up: dashboard  %s/   (log in with the token in %s)\n", agentURL, agentTokenFile)
	fmt.Fprintf(s.out, `ferry up: state      %s
ferry up: registry   http://%s
ferry up: apps       %s
ferry up: host API   %s
ferry up: agent API  %s   (ferry status, ferry history)
ferry up: watching   %s (branch %s, path %s): at once when the branch moves, and every %s
ferry up: try        curl -H 'Host: hello-wat.localhost' %s/
`, o.dataDir, reg.Addr(), appsURL, ctlURL, agentURL, root, branch, rel, o.interval, appsURL)
	if deviceURL != "" {
		fmt.Fprintf(s.out, `ferry up: devices    %s   (ferry fleet token create, then
                      ferry-host device --server %s --enroll-token TOKEN --trust-key %s --data-dir DIR)
`, deviceURL, deviceURL, pubPath)
	}
	err = a.Start(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(s.out, "ferry up: stopped")
	return nil
}

// upHost starts the local ferry-host in process and returns the URLs of its
// app and control listeners and a function that stops it. It is built as
// ferry-host builds itself (control.NewHost): it verifies with the
// environment's registry login besides the local registry's anonymous
// reads, and serves its metrics at GET /metrics on the control API.
func upHost(ctx context.Context, log *slog.Logger, o upOptions, pubPath, token string) (string, string, func(), error) {
	hostDir := filepath.Join(o.dataDir, "host")
	policy, err := signer.PolicyFromFiles([]string{pubPath})
	if err != nil {
		return "", "", nil, err
	}
	ctl, err := control.NewHost(core.Config{
		Runtime:  host.Options{StateDir: hostDir, Logger: log.With("component", "host")},
		StoreDir: filepath.Join(hostDir, "state"),
		Registry: registry.Options{CacheDir: filepath.Join(hostDir, "oci-cache"), NoDockerConfig: true},
		Getenv:   os.Getenv,
		Policy:   policy,
		Logger:   log.With("component", "control"),
	}, token)
	if err != nil {
		return "", "", nil, err
	}
	rt := ctl.Runtime()
	rep := ctl.Restore(ctx)
	for name, err := range rep.Failed {
		log.Error("app could not be restored", "app", name, "error", err.Error())
	}
	appLn, err := net.Listen("tcp", o.appsAddr)
	if err != nil {
		ctl.Close(context.Background()) //nolint:errcheck // failing anyway
		return "", "", nil, fmt.Errorf("--apps-addr: %w", err)
	}
	ctlLn, err := net.Listen("tcp", o.controlAddr)
	if err != nil {
		appLn.Close()
		ctl.Close(context.Background()) //nolint:errcheck // failing anyway
		return "", "", nil, fmt.Errorf("--control-addr: %w", err)
	}
	appSrv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	ctlSrv := &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second}
	go appSrv.Serve(appLn) //nolint:errcheck // ends with Shutdown
	go ctlSrv.Serve(ctlLn) //nolint:errcheck // ends with Shutdown
	// Health probes after deploy, and rollbacks within a version's bake,
	// as ferry-host runs them.
	hctx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); ctl.RunHealth(hctx) }() //nolint:errcheck // nil when hctx ends
	stop := func() {
		stopHealth()
		<-healthDone
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctlSrv.Shutdown(sctx) //nolint:errcheck // best effort on exit
		appSrv.Shutdown(sctx) //nolint:errcheck // best effort on exit
		ctl.Close(sctx)       //nolint:errcheck // best effort on exit
	}
	return "http://" + appLn.Addr().String(), "http://" + ctlLn.Addr().String(), stop, nil
}

// upRepository finds the git repository holding dir (creating one with a
// first commit when there is none) and returns its root, dir relative to
// it (slash-separated) and the branch to deploy.
func upRepository(dir, branch string, out io.Writer) (root, rel, br string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", "", err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return "", "", "", fmt.Errorf("%s is not a directory", dir)
	}
	root = abs
	for {
		if _, err := os.Stat(filepath.Join(root, ".git")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			root = ""
			break
		}
		root = parent
	}
	if root == "" {
		if err := initRepository(abs); err != nil {
			return "", "", "", fmt.Errorf("making %s a git repository: %w", dir, err)
		}
		fmt.Fprintf(out, "ferry up: %s was not in a git repository; made it one, with a first commit\n", dir)
		root = abs
	}
	r, err := filepath.Rel(root, abs)
	if err != nil {
		return "", "", "", err
	}
	if branch == "" {
		gitDir, _, err := gitDirs(root)
		if err != nil {
			return "", "", "", err
		}
		head, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
		if err != nil {
			return "", "", "", fmt.Errorf("reading the checked-out branch: %w", err)
		}
		ref, ok := strings.CutPrefix(strings.TrimSpace(string(head)), "ref: refs/heads/")
		if !ok {
			return "", "", "", fmt.Errorf("the repository at %s has a detached HEAD; check out a branch or pass --branch", root)
		}
		branch = ref
	}
	return root, filepath.ToSlash(r), branch, nil
}

// initRepository runs the equivalent of git init, git add -A and git commit
// in dir, on branch main.
func initRepository(dir string) error {
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: "refs/heads/main"}})
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return err
	}
	_, err = wt.Commit("ferry up: first commit", &git.CommitOptions{
		Author:            &object.Signature{Name: "ferry up", Email: "ferry@localhost", When: time.Now()},
		AllowEmptyCommits: true,
	})
	return err
}

// upSigningKey returns the local signing key, generating it (with a random
// password kept beside it) on first use.
func upSigningKey(dataDir string, out io.Writer) (*signer.PrivateKey, string, error) {
	keyPath := filepath.Join(dataDir, "cosign.key")
	pubPath := filepath.Join(dataDir, "cosign.pub")
	pw, err := upSecret(filepath.Join(dataDir, "cosign.password"))
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		priv, pub, err := signer.GenerateKeyPair([]byte(pw))
		if err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
			return nil, "", err
		}
		fmt.Fprintf(out, "ferry up: generated a signing key: %s (public key %s)\n", keyPath, pubPath)
	}
	key, err := signer.LoadPrivateKeyFile(keyPath, []byte(pw))
	return key, pubPath, err
}

// upSecret returns the secret stored in path, creating a random one (mode
// 0600) on first use.
func upSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return string(trimNewline(b)), nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// upDataDir returns the absolute data directory of `ferry up`: dataDir, or
// .ferry/up in the work tree root when it is empty. It creates the
// directory with a .gitignore that ignores everything in it, so the keys
// and state never end up in a commit of the repository being served.
func upDataDir(dataDir, root string) (string, error) {
	if dataDir == "" {
		dataDir = filepath.Join(root, ".ferry", "up")
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("--data-dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", err
	}
	ignore := filepath.Join(abs, ".gitignore")
	if _, err := os.Stat(ignore); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(ignore, []byte("# ferry up's state: keys, registry, host and agent data.\n*\n"), 0o644); err != nil {
			return "", err
		}
	}
	return abs, nil
}

// gitDirs returns the git directory of the work tree at root (root/.git,
// or the directory a .git file points to, as in a linked work tree) and
// its common directory, where refs and packed-refs live.
func gitDirs(root string) (gitDir, commonDir string, err error) {
	gitDir = filepath.Join(root, ".git")
	st, err := os.Stat(gitDir)
	if err != nil {
		return "", "", err
	}
	if !st.IsDir() {
		b, err := os.ReadFile(gitDir)
		if err != nil {
			return "", "", err
		}
		p, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir:")
		if !ok {
			return "", "", fmt.Errorf("%s is neither a git directory nor a gitdir file", gitDir)
		}
		gitDir = strings.TrimSpace(p)
		if !filepath.IsAbs(gitDir) {
			gitDir = filepath.Join(root, gitDir)
		}
	}
	commonDir = gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		commonDir = strings.TrimSpace(string(b))
		if !filepath.IsAbs(commonDir) {
			commonDir = filepath.Join(gitDir, commonDir)
		}
	}
	return gitDir, filepath.Clean(commonDir), nil
}

// refWatchPoll is how often `ferry up` looks at the branch ref: a stat and
// a read of a few bytes, so a commit starts a round within this time.
const refWatchPoll = 100 * time.Millisecond

// refWatch notices when a local branch moves: a commit, a reset, a fetch
// that updates it, git gc packing it. It compares the bytes of HEAD and the
// loose ref and the size and time of packed-refs; any change is a move
// (a false alarm only costs the agent a no-op round).
type refWatch struct {
	files []string // HEAD, the loose ref, packed-refs
	last  string
}

// newRefWatch returns a refWatch for branch of the work tree at root, with
// the current state as its baseline.
func newRefWatch(root, branch string) (*refWatch, error) {
	gitDir, commonDir, err := gitDirs(root)
	if err != nil {
		return nil, err
	}
	w := &refWatch{files: []string{
		filepath.Join(gitDir, "HEAD"),
		filepath.Join(commonDir, "refs", "heads", filepath.FromSlash(branch)),
		filepath.Join(commonDir, "packed-refs"),
	}}
	w.last = w.state()
	return w, nil
}

// state is a fingerprint of the watched files; a missing file counts as
// its own state.
func (w *refWatch) state() string {
	var b strings.Builder
	for i, f := range w.files {
		if i < 2 {
			c, err := os.ReadFile(f)
			if err != nil {
				b.WriteString("-\n")
				continue
			}
			b.Write(c)
			b.WriteByte('\n')
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			b.WriteString("-\n")
			continue
		}
		fmt.Fprintf(&b, "%d %d\n", st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// changed reports whether the watched files moved since the last call.
func (w *refWatch) changed() bool {
	s := w.state()
	if s == w.last {
		return false
	}
	w.last = s
	return true
}

// run calls wake each time the branch moves, looking every poll, until ctx
// ends.
func (w *refWatch) run(ctx context.Context, poll time.Duration, wake func()) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.changed() {
				wake()
			}
		}
	}
}

// upLoopbackOnly refuses a control API address that is not loopback: ferry
// up serves it over plain HTTP, so the host's bearer token would cross the
// network in clear (ferry-host refuses the same without --tls-cert).
func upLoopbackOnly(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--control-addr %q: %v", addr, err)
	}
	if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("--control-addr %s is not a loopback address: ferry up serves the control API over plain HTTP, "+
		"so it listens on loopback only (use ferry-host with --tls-cert and --tls-key to serve it on the network)", addr)
}

// upFleet is the policy of ferry up's local fleet: every enrolled device,
// one wave, a short soak, at most one failure in five before it aborts.
func upFleet() *spec.FleetTarget {
	r := spec.DefaultRollout()
	r.HealthGate.Soak = 10 * time.Second
	r.DeviceTimeout = 2 * time.Minute
	return &spec.FleetTarget{Rollout: r}
}
