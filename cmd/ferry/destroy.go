package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/sync/plan"
)

func newDestroyCmd(s streams) *cobra.Command {
	var vars varFlags
	var only []string
	var autoApprove bool
	var o outputFlag
	var lockTTL, lockTimeout time.Duration
	var creds credFlags
	var owner ownerFlags
	cmd := &cobra.Command{
		Use:   "destroy [DIR]",
		Short: "Remove every app ferry manages from the spec's targets",
		Long: `destroy plans the deletion of every app that ferry deployed on the
targets of the spec in DIR and that this spec owns (apps ferry did not
deploy, and apps of other specs or of no recorded owner, are never touched),
shows the plan and, after confirmation (or -auto-approve), applies it.
Nothing is built or pushed.`,
		Example: `  ferry destroy examples/hello-wat
  ferry destroy -target local -auto-approve .`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			lopts, err := vars.options()
			if err != nil {
				return withCode(exitUsage, err)
			}
			cfg, err := loadSpec(dirArg(args), lopts, s.err)
			if err != nil {
				return err
			}
			topts, err := creds.apply(targetOptions{LockTTL: lockTTL, Logger: warnLogger(s.err)}, true)
			if err != nil {
				return withCode(exitError, err)
			}
			tgts, skipped, err := openTargets(cfg, only, topts)
			if err != nil {
				return withCode(exitError, err)
			}
			printSkipped(s.err, skipped)
			// Every target listed with no apps: its managed apps are deleted.
			var desired plan.Desired
			for _, name := range sortedKeys(tgts) {
				desired.Targets = append(desired.Targets, plan.DesiredTarget{Name: name, Type: string(cfg.Target(name).Type)})
			}
			source, err := owner.sourceFor(dirArg(args))
			if err != nil {
				return withCode(exitError, err)
			}
			pl, err := plan.Compute(ctx, desired, tgts, plan.PlanOptions{DeleteReason: "destroy", Source: source})
			if err != nil {
				return withCode(exitError, err)
			}
			if !o.json() {
				pl.RenderWith(s.out, plan.RenderOptions{Color: isTerminal(s.out)}) //nolint:errcheck // stdout
			}
			if err := pl.Applyable(); err != nil {
				return withCode(exitError, err)
			}
			if !pl.HasChanges() {
				fmt.Fprintln(s.out, "\nNothing to destroy.")
				return nil
			}
			if !autoApprove {
				if err := confirm(s); err != nil {
					return withCode(exitError, err)
				}
			}
			res, err := plan.Apply(ctx, pl, tgts, plan.ApplyOptions{LockTimeout: lockTimeout})
			if res != nil {
				if o.json() {
					writeJSON(s.out, res) //nolint:errcheck // the error below matters more
				} else {
					renderApply(s.out, res)
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
	cmd.Flags().StringArrayVar(&only, "target", nil, "destroy only on this target (repeatable)")
	creds.register(cmd, true)
	owner.register(cmd, false)
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 0, "how long to wait for the targets' apply locks (0: as long as it takes)")
	cmd.Flags().DurationVar(&lockTTL, "lock-ttl", 0, "lease of each host's apply lock, renewed while destroying (5s to 10m; default 30s)")
	return cmd
}
