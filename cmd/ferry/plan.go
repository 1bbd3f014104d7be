package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-wasm/ferry/builder"
	"github.com/ferry-wasm/ferry/deploy"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/sync/plan"
	"github.com/ferry-wasm/ferry/sync/release"
	"github.com/ferry-wasm/ferry/targets"
)

// releaseFlags are what plan and apply need to turn a spec into signed
// artifacts.
type releaseFlags struct {
	vars       varFlags
	reg        registryFlags
	repo       string
	keyPath    string
	buildCache string
	targets    []string
	lockTTL    time.Duration // apply only (-lock-ttl)
	creds      credFlags     // plan and apply register it (by hand)
	owner      ownerFlags    // -source, -adopt (owner.go)
	// agent, when set (ferry plan), names the agent whose device inventory
	// fleet targets are previewed against (planfleet.go).
	agent *agentFlags
}

func (r *releaseFlags) register(cmd *cobra.Command) {
	r.vars.register(cmd)
	r.reg.register(cmd)
	cmd.Flags().StringVar(&r.repo, "repository", "", "repository prefix REGISTRY/PATH (default: the spec's registry block)")
	cmd.Flags().StringVar(&r.keyPath, "key", os.Getenv("FERRY_SIGNING_KEY"), "sign with this private key (cosign format; default $FERRY_SIGNING_KEY)")
	cmd.Flags().StringVar(&r.buildCache, "build-cache", "", "build cache (default: the user cache dir)")
	cmd.Flags().StringArrayVar(&r.targets, "target", nil, "plan only this target (repeatable)")
	r.owner.register(cmd, true)
}

// planned is the outcome of computing a plan from a spec directory.
type planned struct {
	plan    *plan.Plan
	release *release.Release
	tgts    map[string]targets.Target
	secrets func(target, app string) map[string]string
	// untrusted is set when the spec's trust policy refused an app: the
	// plan leaves it out, and plan and apply exit 1 after doing the rest.
	untrusted error
}

// computePlan loads, builds, pushes and signs the spec in dir (all
// content-addressed and idempotent: targets are not touched), then observes
// the targets and computes the plan.
func (r *releaseFlags) computePlan(ctx context.Context, s streams, dir string) (*planned, error) {
	lopts, err := r.vars.options()
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	c, err := r.reg.client()
	if err != nil {
		return nil, withCode(exitError, err)
	}
	opts := release.ReleaseOptions{
		Load:       lopts,
		Builder:    builder.New(builder.Options{CacheDir: r.buildCache, Progress: progressWriter(s.err)}),
		Registry:   c,
		Repository: r.repo,
		Sign:       signer.SignOptions{Registry: r.reg.signerOptions(c)},
	}
	if r.keyPath != "" {
		if opts.Key, err = loadKey(s, r.keyPath); err != nil {
			return nil, withCode(exitError, err)
		}
	}
	rel, relErr := release.BuildRelease(ctx, dir, gitHead(dir), opts)
	if rel != nil && len(rel.Diagnostics) > 0 {
		writeDiagnostics(s.err, rel.Config, rel.Diagnostics)
	}
	if errors.Is(relErr, release.ErrInvalidSpec) || rel == nil || rel.Config == nil {
		return nil, withCode(exitError, relErr)
	}
	if relErr != nil && errors.Is(relErr, release.ErrNoRepository) {
		return nil, withCode(exitError, relErr)
	}
	var untrusted error
	if relErr != nil && errors.Is(relErr, release.ErrUntrusted) {
		untrusted = relErr
		fmt.Fprintf(s.err, "Error: %v\nApps the spec's trust policy refuses are left as they run.\n", relErr)
	} else if relErr != nil {
		// Per-app failures: those apps are kept as they run; say so.
		fmt.Fprintf(s.err, "Warning: %v\nApps that failed to build, push or sign are left as they run.\n", relErr)
	}
	vopts := r.reg.signerOptions(c)
	topts, err := r.creds.apply(targetOptions{LockTTL: r.lockTTL, Logger: warnLogger(s.err), Registry: c, Verify: &vopts, SpinSign: spinSigning(opts.Key, opts.Sign)}, true)
	if err != nil {
		return nil, withCode(exitError, err)
	}
	var fleets remoteFleets
	if r.agent != nil {
		if f, ok := fleetPreview(ctx, r.agent, rel.Config, s.err); ok {
			fleets, topts.Fleets = f, f
		}
	}
	tgts, skipped, err := openTargets(rel.Config, r.targets, topts)
	if err != nil {
		return nil, withCode(exitError, err)
	}
	printSkipped(s.err, skipped)
	source, err := r.owner.sourceFor(dir)
	if err != nil {
		return nil, withCode(exitError, err)
	}
	desired := rel.Desired(sortedKeys(tgts)...)
	if len(tgts) == 0 {
		desired.Targets = nil // every target was skipped (Desired() of no names is all of them)
	}
	pl, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{Targets: r.targets, Source: source, Adopt: r.owner.adopt})
	if err != nil {
		return nil, withCode(exitError, err)
	}
	if fleets.c != nil {
		noteFleets(s.err, pl, fleets.c.BaseURL)
	}
	return &planned{plan: pl, release: rel, tgts: tgts, secrets: plan.SecretsFrom(desired), untrusted: untrusted}, nil
}

// gitHead returns the commit checked out at dir, or "" outside a repository
// (plans record it; nothing depends on it being set).
func gitHead(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; d = filepath.Dir(d) {
		head, err := os.ReadFile(filepath.Join(d, ".git", "HEAD"))
		if err == nil {
			h := strings.TrimSpace(string(head))
			if ref, ok := strings.CutPrefix(h, "ref: "); ok {
				b, err := os.ReadFile(filepath.Join(d, ".git", filepath.FromSlash(ref)))
				if err != nil {
					return ""
				}
				return strings.TrimSpace(string(b))
			}
			return h
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newPlanCmd(s streams) *cobra.Command {
	var rf releaseFlags
	rf.agent = &agentFlags{}
	var o outputFlag
	var out string
	var detailed, noops bool
	cmd := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Show what apply would change on every target",
		Long: `plan builds, pushes and signs every app of the spec in DIR (content-
addressed and idempotent; no target changes), reads what each target runs
now, and shows per target and app: create, update, delete or no-op, with the
reason. With -out the plan is saved; "ferry apply FILE" applies exactly it,
and refuses if a target moved since.

Every app deployed is recorded on its host as owned by this spec and
target (SOURCE#TARGET, see -source). A plan deletes only its own apps; apps
of other specs, and apps with no recorded owner, are left alone, and an
app name another spec owns is an error naming that owner unless -adopt
takes it over.

Fleet targets are planned against the device inventory of the agent that
rolls them out (--agent, FERRY_AGENT_URL, else the local ferry up; token
FERRY_AGENT_TOKEN), read-only: each change says "roll out DIGEST to N
matching devices in W waves" with the current rollout's state. Without a
reachable agent they are left out with a warning; apply leaves them to the
agent.

Exit codes: 0 success; 1 error. With -detailed-exitcode: 0 no changes,
1 error, 2 changes present.`,
		Example: `  ferry plan examples/hello-wat
  ferry plan -out tfplan -detailed-exitcode .
  ferry plan -adopt .          # take over apps another spec owns
  ferry plan -o json . | jq '.targets[].changes'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := rf.computePlan(cmd.Context(), s, dirArg(args))
			if err != nil {
				return err
			}
			if out != "" {
				if err := plan.WritePlanFile(out, p.plan); err != nil {
					return withCode(exitError, err)
				}
			}
			if o.json() {
				b, err := plan.MarshalPlan(p.plan)
				if err != nil {
					return withCode(exitError, err)
				}
				s.out.Write(append(b, '\n')) //nolint:errcheck // stdout
			} else {
				if err := p.plan.RenderWith(s.out, plan.RenderOptions{Color: isTerminal(s.out), ShowNoops: noops}); err != nil {
					return withCode(exitError, err)
				}
				if out != "" {
					fmt.Fprintf(s.out, "\nSaved the plan to %s. To apply exactly it, run:\n  ferry apply %s %s\n", out, out, dirArg(args))
				}
			}
			if err := p.plan.Applyable(); err != nil {
				return withCode(exitError, err)
			}
			if p.untrusted != nil {
				return withCode(exitError, p.untrusted)
			}
			if detailed && p.plan.HasChanges() {
				return withCode(exitUsage, nil)
			}
			return nil
		},
	}
	rf.register(cmd)
	rf.creds.register(cmd, true)
	rf.agent.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "save the plan to this file")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when none")
	cmd.Flags().BoolVar(&noops, "show-noops", false, "list unchanged apps too")
	return cmd
}

func newApplyCmd(s streams) *cobra.Command {
	var rf releaseFlags
	var o outputFlag
	var autoApprove bool
	var lockDir string
	var timeout, lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE [DIR] | DIR]",
		Short: "Apply a saved plan, or plan and apply a spec directory",
		Long: `apply with a saved plan file applies exactly that plan, after checking that
no target moved since it was computed (a stale plan is refused, naming what
moved). With a directory it computes a plan, shows it and asks for
confirmation (skip with -auto-approve; required when not on a terminal).

Each app is deployed by its target, which verifies the signature itself and
health-checks the new version before it takes traffic; an app that fails is
rolled back (its previous version keeps serving) and the others go on.
Secret variable values come from FERRY_SECRET_<NAME>.`,
		Example: `  ferry apply -auto-approve examples/hello-wat
  ferry plan -out tfplan . && ferry apply tfplan .
  ferry apply -adopt -auto-approve .   # take over apps another spec owns`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			arg := "."
			if len(args) > 0 {
				arg = args[0]
			}
			var pl *plan.Plan
			var tgts map[string]targets.Target
			var secrets func(string, string) map[string]string
			var policy func(string, string) plan.AppPolicy // each app's deploy block
			var untrusted error
			if st, err := os.Stat(arg); err == nil && !st.IsDir() {
				p, err := plan.ReadPlanFile(arg)
				if err != nil {
					return withCode(exitError, err)
				}
				pl = p
				specDir := "."
				if len(args) > 1 {
					specDir = args[1]
				}
				var cfg *spec.Config
				if tgts, cfg, err = targetsForPlan(pl, specDir, rf, s); err != nil {
					return withCode(exitError, err)
				}
				dropFleets(s.err, pl, tgts)
				policy = release.PolicyFromSpec(cfg)
				secrets = secretsFromEnv(pl)
			} else {
				p, err := rf.computePlan(ctx, s, arg)
				if err != nil {
					return err
				}
				pl, tgts, secrets, untrusted = p.plan, p.tgts, p.secrets, p.untrusted
				policy = release.PolicyFromSpec(p.release.Config)
				if !o.json() {
					pl.RenderWith(s.out, plan.RenderOptions{Color: isTerminal(s.out)}) //nolint:errcheck // stdout
				}
				if err := pl.Applyable(); err != nil {
					return withCode(exitError, err)
				}
				if !pl.HasChanges() {
					if o.json() {
						writeJSON(s.out, map[string]any{"changes": 0}) //nolint:errcheck // the error below matters more
					} else if untrusted == nil {
						fmt.Fprintln(s.out, "\nNo changes. Every target runs what the spec says.")
					} else {
						fmt.Fprintln(s.out, "\nNo changes for the apps the spec's trust policy accepts.")
					}
					if untrusted != nil {
						return withCode(exitError, untrusted)
					}
					return nil
				}
				if !autoApprove {
					if err := confirm(s); err != nil {
						return withCode(exitError, err)
					}
				}
			}
			if lockDir != "" {
				if err := os.MkdirAll(lockDir, 0o700); err != nil {
					return withCode(exitError, err)
				}
			}
			opts := plan.ApplyOptions{SecretsFor: secrets, Timeout: timeout, PolicyFor: policy, LockDir: lockDir, LockTimeout: lockTimeout}
			if !o.json() {
				opts.Progress = func(e plan.Event) {
					if e.Kind == plan.EventFinished {
						fmt.Fprintf(s.err, "%s/%s: %s %s (%s)\n", e.Target, e.App, e.Action, e.Outcome, e.Duration.Round(time.Millisecond))
					}
				}
			}
			res, err := plan.Apply(ctx, pl, tgts, opts)
			if o.json() && res != nil {
				writeJSON(s.out, res) //nolint:errcheck // the error below matters more
			} else if res != nil {
				renderApply(s.out, res)
			}
			if err != nil {
				return withCode(exitError, err)
			}
			if untrusted != nil {
				return withCode(exitError, untrusted)
			}
			return nil
		},
	}
	rf.register(cmd)
	rf.creds.register(cmd, true)
	o.register(cmd)
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&lockDir, "lock-dir", filepath.Join(os.TempDir(), "ferry-locks"), "directory for per-target apply locks on this machine")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "bound one app's deployment, health wait included (default 5m; an app's deploy { timeout } in the spec wins)")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "how long to wait for the targets' apply locks (0: as long as it takes); a host's holder is named while waiting")
	cmd.Flags().DurationVar(&rf.lockTTL, "lock-ttl", 0, "lease of each host's apply lock, renewed while applying; a crashed apply holds it this long (5s to 10m; default 30s)")
	return cmd
}

// targetsForPlan opens the targets a saved plan names, using the spec in
// specDir for their connection details.
func targetsForPlan(pl *plan.Plan, specDir string, rf releaseFlags, s streams) (map[string]targets.Target, *spec.Config, error) {
	lopts, err := rf.vars.options()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := loadSpec(specDir, lopts, io.Discard)
	if err != nil {
		return nil, nil, fmt.Errorf("applying a saved plan reads the targets' connection details from the spec in %s: %w", specDir, err)
	}
	var names []string
	for _, t := range pl.Targets {
		names = append(names, t.Name)
	}
	rc, err := rf.reg.client()
	if err != nil {
		return nil, nil, err
	}
	vopts := rf.reg.signerOptions(rc)
	// Spin images are made at apply time (from the plan's artifacts), so
	// they are signed here with the key that signed those artifacts.
	var key *signer.PrivateKey
	if rf.keyPath != "" {
		if key, err = loadKey(s, rf.keyPath); err != nil {
			return nil, nil, err
		}
	}
	spinSign := spinSigning(key, signer.SignOptions{Registry: vopts})
	topts, err := rf.creds.apply(targetOptions{LockTTL: rf.lockTTL, Logger: warnLogger(s.err), Registry: rc, Verify: &vopts, SpinSign: spinSign}, true)
	if err != nil {
		return nil, nil, err
	}
	tgts, _, err := openTargets(cfg, names, topts)
	return tgts, cfg, err
}

// secretsFromEnv gives each app of a saved plan the values of its secret
// variables from FERRY_SECRET_<NAME>.
func secretsFromEnv(pl *plan.Plan) func(target, app string) map[string]string {
	byApp := map[string]deploy.App{}
	for _, t := range pl.Targets {
		for _, ch := range t.Changes {
			if ch.After != nil {
				byApp[t.Name+"/"+ch.App] = ch.After.App
			}
		}
	}
	return func(target, app string) map[string]string {
		var out map[string]string
		for name, v := range byApp[target+"/"+app].Variables {
			if !v.Secret {
				continue
			}
			if val, ok := os.LookupEnv("FERRY_SECRET_" + strings.ToUpper(name)); ok {
				if out == nil {
					out = map[string]string{}
				}
				out[name] = val
			}
		}
		return out
	}
}

// confirm asks "yes" on a terminal, like terraform apply.
func confirm(s streams) error {
	return confirmWith(s, "-auto-approve", "\nDo you want to perform these actions? Only 'yes' will be accepted: ")
}

// confirmWith asks question on the terminal and accepts only "yes"; off a
// terminal it fails, naming skipFlag, the flag that skips the question.
func confirmWith(s streams, skipFlag, question string) error {
	f, ok := s.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("not on a terminal: pass %s to go on without confirmation", skipFlag)
	}
	fmt.Fprint(s.out, question)
	var answer string
	fmt.Fscanln(f, &answer) //nolint:errcheck // empty answer = no
	if answer != "yes" {
		return errors.New("cancelled")
	}
	return nil
}

func renderApply(w io.Writer, res *plan.ApplyResult) {
	for _, t := range res.Targets {
		for _, a := range t.Apps {
			line := fmt.Sprintf("%s/%s: %s %s", t.Name, a.App, a.Action, a.Outcome)
			if a.Error != "" {
				line += ": " + a.Error
			}
			if a.Detail != "" {
				line += " (" + a.Detail + ")"
			}
			fmt.Fprintln(w, line)
		}
		for _, d := range t.Diagnostics {
			fmt.Fprintln(w, d.String())
		}
	}
	progressing := ""
	if n := res.Count(plan.OutcomeProgressing); n > 0 {
		progressing = fmt.Sprintf(", %d progressing", n)
	}
	fmt.Fprintf(w, "\nApply complete: %d applied%s, %d failed, %d skipped, %d unchanged.\n",
		res.Count(plan.OutcomeApplied), progressing, res.Count(plan.OutcomeFailed), res.Count(plan.OutcomeSkipped), res.Count(plan.OutcomeUnchanged))
}
