package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/open"
)

// newForceUnlockCmd is `ferry force-unlock LOCK_ID [DIR]`, Terraform's
// force-unlock for the apply lock a ferry-host holds.
func newForceUnlockCmd(s streams) *cobra.Command {
	var vars varFlags
	var force bool
	var creds credFlags
	cmd := &cobra.Command{
		Use:   "force-unlock LOCK_ID [DIR]",
		Short: "Release a host's apply lock that a stopped apply still holds",
		Long: `force-unlock releases the apply lock with id LOCK_ID on whichever host of the
spec's host targets holds it. An apply takes each host's lock (a lease it
renews) before it changes anything and releases it when done; a lock whose
holder died lapses by itself after its lease (apply -lock-ttl, 30 s by
default). Use force-unlock only when that holder is certainly gone: the id is
in the message of an apply that waited for the lock, and in GET /v1/lock.

It asks for confirmation unless -force is given.`,
		Example: `  ferry force-unlock 3f1c9a0e5b7d4c2a8e6f1b3d5a7c9e0f .
  ferry force-unlock -force 3f1c9a0e5b7d4c2a8e6f1b3d5a7c9e0f examples`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			lopts, err := vars.options()
			if err != nil {
				return withCode(exitUsage, err)
			}
			cfg, err := loadSpec(dirArg(args[1:]), lopts, s.err)
			if err != nil {
				return err
			}
			topts, err := creds.apply(targetOptions{}, true)
			if err != nil {
				return withCode(exitError, err)
			}
			found, err := findLock(ctx, cfg, id, topts)
			if err != nil {
				return withCode(exitError, err)
			}
			if len(found) == 0 {
				return withCode(exitError, fmt.Errorf("no host of this spec's host targets holds lock %s (it may have been released or lapsed already)", id))
			}
			for _, f := range found {
				for _, l := range f.locks {
					fmt.Fprintf(s.out, "Lock %s on %s (target %s): held by %q since %s, expires %s\n",
						id, l.Where, f.target, l.Holder, l.Acquired.Format("2006-01-02 15:04:05Z07:00"), l.Expires.Format("15:04:05Z07:00"))
				}
			}
			if !force {
				if err := confirmWith(s, "-force", "\nRelease it? An apply still running under it may interleave with the next one. Only 'yes' will be accepted: "); err != nil {
					return withCode(exitError, err)
				}
			}
			for _, f := range found {
				if err := f.insp.ReleaseLock(ctx, f.locks[0].ID); err != nil {
					return withCode(exitError, fmt.Errorf("releasing lock %s on %s: %w", id, f.where(), err))
				}
			}
			fmt.Fprintln(s.out, "Lock released.")
			return nil
		},
	}
	vars.register(cmd)
	creds.register(cmd, true)
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

// heldLock is a target that holds the lock being looked for.
type heldLock struct {
	target string
	insp   targets.LockInspector
	locks  []targets.LockInfo // those with the id, one per place
}

// where lists the places (hosts) that hold the lock.
func (h heldLock) where() string {
	ws := make([]string, len(h.locks))
	for i, l := range h.locks {
		ws[i] = l.Where
	}
	return strings.Join(ws, ", ")
}

// findLock opens every target of the spec that this ferry can drive (see
// open.Target), asks those whose apply lock can be inspected
// (targets.LockInspector) for their locks and returns those that hold id.
// A target that cannot be asked is an error: the lock may be there.
func findLock(ctx context.Context, cfg *spec.Config, id string, o targetOptions) ([]heldLock, error) {
	var found []heldLock
	var errs []error
	for _, t := range cfg.Targets {
		opened, err := open.Target(t, o)
		if errors.Is(err, open.ErrUnsupported) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		insp, ok := opened.Target.(targets.LockInspector)
		if !ok {
			continue
		}
		locks, err := insp.Locks(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", t.Name, err))
		}
		h := heldLock{target: t.Name, insp: insp}
		for _, l := range locks {
			if strings.EqualFold(l.ID, id) {
				h.locks = append(h.locks, l)
			}
		}
		if len(h.locks) > 0 {
			found = append(found, h)
		}
	}
	if len(found) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return found, nil
}
