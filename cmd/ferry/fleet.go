package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets/fleet"
	"github.com/ferry-wasm/ferry/targets/fleet/controller"
	"github.com/ferry-wasm/ferry/targets/fleet/hub"
)

// deviceFlags say where the agent serves the fleet device API.
type deviceFlags struct {
	listen, certFile, keyFile string
	// onEvent, when set, is told of rollout events (notifications).
	onEvent func(controller.Event)
	// leading, when set (ferry agent --leader-elect), is hub.Options.Leading:
	// a follower's device and admin APIs answer 503, and start does not
	// run the rollouts (the caller starts the hub once it leads).
	leading func() bool
}

func (f *deviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "device-listen", "127.0.0.1:8091", `address of the fleet device API that edge devices dial ("" turns fleets off); plain HTTP only on loopback`)
	cmd.Flags().StringVar(&f.certFile, "device-tls-cert", "", "PEM certificate of the device API (required off loopback)")
	cmd.Flags().StringVar(&f.keyFile, "device-tls-key", "", "PEM private key of --device-tls-cert")
}

// start opens the fleet hub in dir, serves its device API until ctx ends
// and runs its rollouts (with leading set, the caller runs them). It returns a nil hub when --device-listen is
// empty, and the device API's URL.
func (f *deviceFlags) start(ctx context.Context, dir string, log *slog.Logger) (*hub.Hub, string, error) {
	if f.listen == "" {
		return nil, "", nil
	}
	var tlsCfg *tls.Config
	if f.certFile != "" || f.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, "", withCode(exitUsage, fmt.Errorf("--device-tls-cert/--device-tls-key: %w", err))
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	} else if err := upLoopbackOnly(f.listen); err != nil {
		return nil, "", withCode(exitUsage, fmt.Errorf("--device-listen: %w; give the device API a certificate with --device-tls-cert and --device-tls-key", err))
	}
	h, err := hub.Open(hub.Options{Dir: dir, Logger: log, OnEvent: f.onEvent, Leading: f.leading})
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, "", fmt.Errorf("--device-listen: %w", err)
	}
	srv := &http.Server{Handler: h.DeviceHandler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		go srv.ServeTLS(ln, "", "") //nolint:errcheck // ends with Shutdown
	} else {
		go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // best effort on exit
	}()
	if f.leading == nil {
		h.Start(ctx)
	}
	return h, scheme + "://" + ln.Addr().String(), nil
}

// fleetClient is the admin API client of the agent that --agent (or the
// local ferry up) names.
func fleetClient(af *agentFlags) (*hub.Client, error) {
	c, err := af.client()
	if err != nil {
		return nil, err
	}
	return &hub.Client{BaseURL: c.BaseURL, Token: c.Token}, nil
}

func newFleetCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Enroll edge devices and watch or steer fleet rollouts",
		Long: `Fleet targets roll an app out to edge devices in waves (see the rollout block
in spec/LANGUAGE.md). The agent serves the device API (--device-listen); a
device joins with an enrollment token:

  ferry fleet token create --ttl 1h --labels ring=canary
  ferry-host device --server URL --enroll-token TOKEN --data-dir /var/lib/ferry`,
		Example: `  ferry fleet token create --ttl 1h --uses 10 --labels site=berlin
  ferry fleet devices -l site=berlin
  ferry fleet rollout status edge --watch
  ferry fleet rollout pause edge`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newFleetTokenCmd(s), newFleetDevicesCmd(s), newFleetDeviceCmd(s), newFleetRolloutCmd(s))
	return cmd
}

func newFleetTokenCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke enrollment tokens",
		Example: `  ferry fleet token create --ttl 1h --uses 5
  ferry fleet token list
  ferry fleet token revoke tok-3f2a`,
		Args: cobra.NoArgs,
	}
	var af agentFlags
	var o outputFlag
	var ttl time.Duration
	var uses int
	var labels []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Print a new enrollment token (shown once)",
		Long: `Print a new enrollment token. The agent keeps only its hash, so it is shown
this once. Devices that enroll with it get its labels (which win over their
own). A token without --ttl never expires; without --uses it has no limit.`,
		Example: `  ferry fleet token create --ttl 1h
  ferry fleet token create --ttl 24h --uses 100 --labels ring=canary,site=berlin -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 || uses < 0 {
				return withCode(exitUsage, fmt.Errorf("--ttl and --uses must not be negative"))
			}
			lm, err := parseLabelList(labels)
			if err != nil {
				return withCode(exitUsage, err)
			}
			c, err := fleetClient(&af)
			if err != nil {
				return withCode(exitError, err)
			}
			req := hub.TokenRequest{Uses: uses, Labels: lm}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			tok, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, tok)
			}
			fmt.Fprintln(s.out, tok.Secret)
			exp := "never expires"
			if !tok.Token.Expires.IsZero() {
				exp = "expires " + tok.Token.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(s.err, "token %s: %s, %s\n", tok.Token.ID, exp, usesText(tok.Token.MaxUses))
			return nil
		},
	}
	af.register(create)
	o.register(create)
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long the token may be used (default: forever)")
	create.Flags().IntVar(&uses, "uses", 0, "how many devices may enroll with it (default: no limit)")
	create.Flags().StringSliceVar(&labels, "labels", nil, "labels k=v given to every device that enrolls with it")

	var laf agentFlags
	var lo outputFlag
	list := &cobra.Command{
		Use:     "list",
		Short:   "List enrollment tokens (never their secrets)",
		Example: `  ferry fleet token list -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := fleetClient(&laf)
			if err != nil {
				return withCode(exitError, err)
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return withCode(exitError, err)
			}
			if lo.json() {
				return writeJSON(s.out, toks)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tEXPIRES\tUSES\tLABELS\tREVOKED")
			for _, t := range toks {
				exp, rev := "never", ""
				if !t.Expires.IsZero() {
					exp = t.Expires.Format(time.RFC3339)
				}
				if !t.Revoked.IsZero() {
					rev = t.Revoked.Format(time.RFC3339)
				}
				max := "∞"
				if t.MaxUses > 0 {
					max = fmt.Sprint(t.MaxUses)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%s\t%s\t%s\n", t.ID, t.Created.Format(time.RFC3339), exp, t.Uses, max, labelText(t.Labels), rev)
			}
			return tw.Flush()
		},
	}
	laf.register(list)
	lo.register(list)

	var raf agentFlags
	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an enrollment token: no device enrolls with it any more",
		Example: `  ferry fleet token revoke tok-3f2a`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := fleetClient(&raf)
			if err != nil {
				return withCode(exitError, err)
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return withCode(exitError, err)
			}
			fmt.Fprintf(s.out, "token %s revoked\n", args[0])
			return nil
		},
	}
	raf.register(revoke)
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func usesText(max int) string {
	if max == 0 {
		return "any number of uses"
	}
	return fmt.Sprintf("%d uses", max)
}

// parseLabelList parses k=v items (each item may itself hold commas).
func parseLabelList(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, it := range items {
		for _, kv := range strings.Split(it, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("invalid label %q: want key=value", kv)
			}
			m[k] = v
		}
	}
	return m, nil
}

func labelText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func newFleetDevicesCmd(s streams) *cobra.Command {
	var af agentFlags
	var o outputFlag
	var selector string
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List enrolled devices: labels, arch, last seen, apps",
		Example: `  ferry fleet devices
  ferry fleet devices -l 'ring=canary,arch in (arm64)' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var sel spec.LabelSelector
			if err := sel.UnmarshalText([]byte(selector)); err != nil {
				return withCode(exitUsage, fmt.Errorf("-l: %w", err))
			}
			c, err := fleetClient(&af)
			if err != nil {
				return withCode(exitError, err)
			}
			devs, err := c.Devices(cmd.Context(), sel.String())
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, devs)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tARCH\tVERSION\tLAST SEEN\tLABELS\tAPPS")
			for _, d := range devs {
				seen := "never"
				if !d.LastSeen.IsZero() {
					seen = d.LastSeen.Format(time.RFC3339)
				}
				if !d.Revoked.IsZero() {
					seen = "revoked"
				}
				var apps []string
				if d.Status != nil {
					for _, a := range d.Status.Apps {
						apps = append(apps, fmt.Sprintf("%s@%s %s", a.Name, fleet.Short(a.Digest), a.Phase))
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Info.Arch, d.Info.Version, seen, labelText(d.Labels), strings.Join(apps, ", "))
			}
			return tw.Flush()
		},
	}
	af.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector (Kubernetes syntax)")
	return cmd
}

func newFleetDeviceCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "device",
		Short:   "Act on one device",
		Example: `  ferry fleet device revoke dev-rpi-7f3a`,
		Args:    cobra.NoArgs,
	}
	var af agentFlags
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device: its credential stops working at once",
		Example: `  ferry fleet device revoke dev-rpi-7f3a
  ferry fleet devices -o json | jq -r '.[].id'   # find IDs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := fleetClient(&af)
			if err != nil {
				return withCode(exitError, err)
			}
			if err := c.RevokeDevice(cmd.Context(), args[0]); err != nil {
				return withCode(exitError, err)
			}
			fmt.Fprintf(s.out, "device %s revoked\n", args[0])
			return nil
		},
	}
	af.register(revoke)
	cmd.AddCommand(revoke)
	return cmd
}

func newFleetRolloutCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Show, pause, resume or abort the rollouts of a fleet target",
		Example: `  ferry fleet rollout status edge --watch
  ferry fleet rollout pause edge --app hello
  ferry fleet rollout abort edge --reason "bad canary"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRolloutStatusCmd(s))
	for _, action := range []string{"pause", "resume", "abort"} {
		cmd.AddCommand(newRolloutActionCmd(s, action))
	}
	return cmd
}

func newRolloutStatusCmd(s streams) *cobra.Command {
	var af agentFlags
	var o outputFlag
	var app string
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status TARGET",
		Short: "Show a fleet target's rollouts: waves, devices by state, abort reason",
		Long: `Show a fleet target's rollouts. With --watch it redraws every --interval
until every rollout shown has completed or aborted (Ctrl-C stops it).`,
		Example: `  ferry fleet rollout status edge
  ferry fleet rollout status edge --app hello --watch
  ferry fleet rollout status edge -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := fleetClient(&af)
			if err != nil {
				return withCode(exitError, err)
			}
			for {
				ros, err := c.Rollouts(cmd.Context(), args[0])
				if err != nil {
					return withCode(exitError, err)
				}
				ros = filterApp(ros, app)
				if o.json() {
					if err := writeJSON(s.out, ros); err != nil {
						return err
					}
				} else {
					if watch && isTerminal(s.out) {
						fmt.Fprint(s.out, "\x1b[H\x1b[2J")
					}
					printRollouts(s.out, args[0], ros)
				}
				if !watch || !anyLive(ros) {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	af.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&app, "app", "", "only this app's rollout")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "redraw until the rollouts end")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --watch redraws")
	return cmd
}

func filterApp(ros []controller.Rollout, app string) []controller.Rollout {
	if app == "" {
		return ros
	}
	var out []controller.Rollout
	for _, r := range ros {
		if r.App == app {
			out = append(out, r)
		}
	}
	return out
}

func anyLive(ros []controller.Rollout) bool {
	for _, r := range ros {
		if r.State != nil && r.State.Live() {
			return true
		}
	}
	return false
}

func printRollouts(w io.Writer, target string, ros []controller.Rollout) {
	if len(ros) == 0 {
		fmt.Fprintf(w, "fleet %s: no rollouts\n", target)
		return
	}
	for i, r := range ros {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "app %s on fleet %s\n", r.App, r.Target)
		for _, line := range strings.Split(strings.TrimRight(r.Summary, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

func newRolloutActionCmd(s streams, action string) *cobra.Command {
	var af agentFlags
	var o outputFlag
	var app, reason string
	short := map[string]string{
		"pause":  "Pause a rollout: no device starts or is judged until resume",
		"resume": "Resume a paused rollout",
		"abort":  "Abort a rollout (with auto_rollback, the devices it moved go back)",
	}[action]
	cmd := &cobra.Command{
		Use:     action + " TARGET",
		Short:   short,
		Example: fmt.Sprintf("  ferry fleet rollout %s edge\n  ferry fleet rollout %s edge --app hello -o json", action, action),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := fleetClient(&af)
			if err != nil {
				return withCode(exitError, err)
			}
			if app == "" {
				ros, err := c.Rollouts(cmd.Context(), args[0])
				if err != nil {
					return withCode(exitError, err)
				}
				switch len(ros) {
				case 0:
					return withCode(exitError, fmt.Errorf("fleet %s has no rollout", args[0]))
				case 1:
					app = ros[0].App
				default:
					names := make([]string, len(ros))
					for i, r := range ros {
						names[i] = r.App
					}
					return withCode(exitUsage, fmt.Errorf("fleet %s rolls out %d apps (%s): choose one with --app", args[0], len(ros), strings.Join(names, ", ")))
				}
			}
			ro, err := c.Act(cmd.Context(), args[0], app, action, reason)
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, ro)
			}
			printRollouts(s.out, args[0], []controller.Rollout{ro})
			return nil
		},
	}
	af.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&app, "app", "", "the app whose rollout to "+action+" (needed when the fleet rolls out several)")
	if action == "abort" {
		cmd.Flags().StringVar(&reason, "reason", "", "why, shown in the rollout's status")
	}
	return cmd
}

// fleetDir is where the agent keeps its fleet hub under dataDir.
func fleetDir(dataDir string) string { return filepath.Join(dataDir, "fleet") }
