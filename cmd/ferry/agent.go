package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferry-wasm/ferry/internal/httproute"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/internal/procsec"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/agent"
	"github.com/ferry-wasm/ferry/sync/agent/dashboard"
	"github.com/ferry-wasm/ferry/sync/agent/gitsource"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/open"
)

// logFlags choose the slog handler of long-running commands.
type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.format, "log-format", "text", `log format: "text" or "json"`)
	cmd.Flags().StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (l *logFlags) logger(s streams) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("invalid argument %q for --log-level", l.level)
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch l.format {
	case "json":
		return slog.New(slog.NewJSONHandler(s.err, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(s.err, o)), nil
	}
	return nil, fmt.Errorf("invalid argument %q for --log-format: want text or json", l.format)
}

// cachedTargets is the agent's TargetsFunc for specs: it opens each
// supported target once per name and connection (open.Opened.Key) and
// reuses the driver while both stay the same.
type cachedTargets struct {
	log  *slog.Logger
	opts targetOptions // credentials; never a DefaultToken
	mu   stdsync.Mutex
	m    map[string]targets.Target // by name and open.Key
}

func (c *cachedTargets) targets(_ context.Context, cfg *spec.Config) (map[string]targets.Target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]targets.Target{}
	}
	out := map[string]targets.Target{}
	for _, t := range cfg.Targets {
		// A target is reopened when its connection details change.
		key := t.Name + "\x00" + open.Key(t)
		if tg, ok := c.m[key]; ok {
			out[t.Name] = tg
			continue
		}
		o := c.opts
		o.Logger, o.DefaultToken = c.log, ""
		opened, err := open.Target(t, o)
		var unsupported *open.UnsupportedError
		switch {
		case errors.As(err, &unsupported):
			c.log.Warn(unsupported.Error())
		case err != nil:
			return nil, err
		default:
			c.m[key] = opened.Target
			out[t.Name] = opened.Target
		}
	}
	return out, nil
}

// serveAgentAPI serves the agent's status API, webhooks and metrics on ln
// until ctx ends, and the dashboard ui at / and /ui/ when it is not nil.
func serveAgentAPI(ctx context.Context, a *agent.Agent, ui *dashboard.Dashboard, ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if ui != nil {
		mux.Handle("GET /{$}", ui)
		mux.Handle("/ui/", ui)
		srv.RegisterOnShutdown(ui.Close) // the event streams would hold Shutdown
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // best effort on exit
	}()
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
}

// secretFrom reads a secret from the file named by fileEnv, else from env.
func secretFrom(env, fileEnv string) (string, error) {
	if f := os.Getenv(fileEnv); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileEnv, err)
		}
		return string(trimNewline(b)), nil
	}
	return os.Getenv(env), nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func newAgentCmd(s streams) *cobra.Command {
	var rf releaseFlags
	var lf logFlags
	var elect leaderFlags
	var devices deviceFlags
	var creds credFlags
	var notes notifyFlags
	var dash dashboardFlags
	var repo, branch, path, dataDir, listen, buildUser, buildDir, gitCAFile string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the GitOps agent: every commit is built, signed, planned and applied",
		Long: `agent watches a git repository (https, ssh, file URL or local path). Each
round — every --interval, or at once on a signed push webhook — it fetches
the branch, releases the newest commit (load, build, push, sign), plans
against what every target runs now and applies, then records the round in
its history. Every round also repairs drift.

Credentials: git from FERRY_GIT_USERNAME/PASSWORD/TOKEN or FERRY_GIT_SSH_KEY
(an https server signed by a private CA: --git-ca-file or FERRY_GIT_CA_FILE);
registry from FERRY_REGISTRY_USERNAME/PASSWORD/TOKEN or the Docker config;
the signing key's password from FERRY_PASSWORD; host targets' tokens and TLS
files from the credentials file (--credentials), each sent only to the
endpoints its credential block allows. The status API's bearer token
is FERRY_AGENT_TOKEN (or the file in FERRY_AGENT_TOKEN_FILE); webhook secrets
are FERRY_WEBHOOK_GITHUB_SECRET, FERRY_WEBHOOK_GITLAB_TOKEN and
FERRY_WEBHOOK_GITEA_SECRET. The API serves /v1/status, /v1/history,
/hooks/{github,gitlab,gitea} and /metrics.

Dashboard: the same listener serves a web UI at / (and /ui/): log in with
the status API token (operator: rollback, pin, sync, fleet pause/resume/
abort) or the token in --viewer-token-file (read-only). See README
"Dashboard".

Notifications: --notify-webhook gets a JSON POST signed with HMAC-SHA256
(header X-Ferry-Signature: t=UNIX,v1=HEX over "t.body", keyed with the
--notify-secret-file secret) and --notify-slack a Slack message, when a
fleet rollout starts, completes or aborts, an apply fails, an app turns
unhealthy or is rolled back. Deliveries retry with backoff and never slow a
round; ferry_notifications_total counts them. See README "Notifications".`,
		Example: `  FERRY_AGENT_TOKEN=... ferry agent --repo https://git.example.com/acme/apps.git --key cosign.key
  sudo ferry agent --repo https://git.example.com/acme/apps.git --build-user ferry-build --build-dir /var/tmp/ferry-build
  ferry agent --repo file:///srv/git/apps.git --path deploy --interval 1m
  FERRY_NOTIFY_SLACK=https://hooks.slack.com/services/T000/B000/XXXX ferry agent --repo https://git.example.com/acme/apps.git \
      --notify-webhook https://ops.example.com/hooks/ferry --notify-secret-file /etc/ferry/notify.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := lf.logger(s)
			if err != nil {
				return withCode(exitUsage, err)
			}
			if dataDir, err = filepath.Abs(dataDir); err != nil {
				return withCode(exitError, fmt.Errorf("--data-dir: %w", err))
			}
			lopts, err := rf.vars.options()
			if err != nil {
				return withCode(exitUsage, err)
			}
			c, err := rf.reg.client()
			if err != nil {
				return withCode(exitError, err)
			}
			// Builds run a committer's code: keep it away from our secrets.
			if err := procsec.HideFromSameUser(); err != nil {
				log.Warn("cannot mark the agent non-dumpable; a build of the same uid could read its memory", "error", err)
			}
			bu, err := procsec.BuildAccount(buildUser)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("--build-user: %w", err))
			}
			bopts := builder.Options{CacheDir: rf.buildCache, Logger: log, WorkDir: buildDir}
			if bu != nil {
				bopts.User = &builder.User{Name: bu.Name, UID: bu.UID, GID: bu.GID}
			} else if os.Geteuid() == 0 {
				log.Warn("builds run as root: a build command can read every secret of the agent; see --build-user")
			}
			ropts := release.ReleaseOptions{
				Load:       lopts,
				Builder:    builder.New(bopts),
				Registry:   c,
				Repository: rf.repo,
				Sign:       signer.SignOptions{Registry: rf.reg.signerOptions(c)},
			}
			if rf.keyPath != "" {
				if ropts.Key, err = loadKey(s, rf.keyPath); err != nil {
					return withCode(exitError, err)
				}
			}
			auth, err := gitsource.GitAuthFromEnv(os.Getenv)
			if err != nil {
				return withCode(exitError, err)
			}
			if gitCAFile != "" {
				auth.CAFile = gitCAFile
			}
			token, err := secretFrom("FERRY_AGENT_TOKEN", "FERRY_AGENT_TOKEN_FILE")
			if err != nil {
				return withCode(exitError, err)
			}
			if token == "" {
				log.Warn("FERRY_AGENT_TOKEN is not set: the status API refuses every request")
			}
			vopts := rf.reg.signerOptions(c)
			topts, err := creds.apply(targetOptions{Registry: c, Verify: &vopts, SpinSign: spinSigning(ropts.Key, ropts.Sign)}, false)
			if err != nil {
				return withCode(exitError, err)
			}
			metrics := prometheus.NewRegistry()
			notifier, err := notes.notifier(log, metrics)
			if err != nil {
				return err
			}
			startNotifier(ctx, notifier, log)
			var bus eventBus
			devices.onEvent = bus.fleetEvent
			if notifier != nil {
				devices.onEvent = both(fleetNotify(notifier.Publish), bus.fleetEvent)
			}
			viewer, err := dash.viewerToken()
			if err != nil {
				return err
			}
			// With leader election only the leader runs the fleet's
			// rollouts and serves its devices; followers answer 503.
			var leading atomic.Bool
			if elect.enabled {
				devices.leading = leading.Load
			}
			fleets, deviceURL, err := devices.start(ctx, fleetDir(dataDir), log.With("component", "fleet"))
			if err != nil {
				return err
			}
			var fleetRoutes func(*httproute.Mux)
			if fleets != nil {
				topts.Fleets, fleetRoutes = fleets, fleets.Routes
			}
			ct := &cachedTargets{log: log, opts: topts}
			state, err := elect.stateStore()
			if err != nil {
				return err
			}
			if fleets != nil {
				metrics.MustRegister(fleets.Collector())
			}
			a, err := agent.NewAgent(agent.Options{
				Repo: repo, Branch: branch, Path: path, Interval: interval, DataDir: dataDir,
				Releaser: release.SpecReleaser(ropts), Targets: ct.targets, Auth: auth,
				Webhooks: agent.WebhookSecrets{
					GitHub: os.Getenv("FERRY_WEBHOOK_GITHUB_SECRET"),
					GitLab: os.Getenv("FERRY_WEBHOOK_GITLAB_TOKEN"),
					Gitea:  os.Getenv("FERRY_WEBHOOK_GITEA_SECRET"),
				},
				APIToken: token, Logger: log, Metrics: metrics, ExtraRoutes: fleetRoutes,
				// --target: only those targets are planned and applied.
				// Apps are owned by the repository URL + path + target;
				// --adopt takes over clashing apps in every round.
				Plan:   plan.PlanOptions{Targets: rf.targets, Source: agentSource(rf.owner, repo, path), Adopt: rf.owner.adopt},
				Apply:  plan.ApplyOptions{LockDir: filepath.Join(dataDir, "locks")},
				State:  state,
				Notify: notifier.Publisher(),
			})
			if err != nil {
				return withCode(exitError, err)
			}
			defer a.Close()
			bus.attach(a.Publish)
			if fleets != nil {
				bus.publishDevices(ctx, fleets, 250*time.Millisecond)
			}
			ui, err := newDashboard(a, fleets, token, viewer, log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return withCode(exitError, fmt.Errorf("--listen: %w", err))
			}
			serveAgentAPI(ctx, a, ui, ln)
			if ui != nil {
				fmt.Fprintf(s.out, "ferry agent: dashboard http://%s/ (log in with the status API token)\n", ln.Addr())
			}
			fmt.Fprintf(s.out, "ferry agent: watching %s (branch %s, path %s) every %s; API on http://%s\n", repo, branch, path, interval, ln.Addr())
			if deviceURL != "" {
				fmt.Fprintf(s.out, "ferry agent: fleet device API on %s\n", deviceURL)
			}
			return elect.run(ctx, log, func(ctx context.Context) error {
				if fleets != nil && elect.enabled {
					fleets.Start(ctx)
					leading.Store(true)
					defer leading.Store(false)
				}
				if err := a.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
					return withCode(exitError, err)
				}
				return nil
			})
		},
	}
	rf.register(cmd)
	creds.register(cmd, false)
	notes.register(cmd)
	dash.register(cmd)
	lf.register(cmd)
	elect.register(cmd)
	devices.register(cmd)
	cmd.Flags().StringVar(&repo, "repo", "", "spec repository: https, ssh or file URL, or a local path (required)")
	cmd.Flags().StringVar(&branch, "branch", "main", "branch to deploy")
	cmd.Flags().StringVar(&path, "path", ".", "directory of the spec inside the repository")
	cmd.Flags().DurationVar(&interval, "interval", 30*time.Second, "time between rounds when no webhook arrives")
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir("agent"), "git mirror, checkouts and history database")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address of the status API, webhooks and metrics")
	cmd.Flags().StringVar(&buildUser, "build-user", "", `account builds run as: a name, uid or UID:GID, or "self" (default "nobody" when the agent runs as root, else the agent's own user)`)
	cmd.Flags().StringVar(&buildDir, "build-dir", "", "scratch copies of sources for builds, and the build user's Go caches (default ferry-build in the temp directory)")
	cmd.Flags().StringVar(&gitCAFile, "git-ca-file", "", "PEM file of CAs an https git server's certificate may be signed by, besides the system's (default $FERRY_GIT_CA_FILE)")
	cmd.MarkFlagRequired("repo") //nolint:errcheck // flag exists
	return cmd
}

// defaultDataDir is $XDG_STATE_HOME/ferry/NAME or ~/.local/state/ferry/NAME.
func defaultDataDir(name string) string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ferry", name)
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "ferry", name)
	}
	return filepath.Join(".ferry", name)
}
