package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// streams are the standard streams a command reads and writes; tests pass
// buffers.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// run executes the ferry command line args and returns the process exit code.
func run(ctx context.Context, args []string, in io.Reader, out, errw io.Writer) int {
	s := streams{in: in, out: out, err: errw}
	root := newRootCmd(s)
	root.SetArgs(singleDashLongFlags(args))
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errw)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintln(errw, "Error:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(errw, "Error:", err)
	if isUsageError(err) {
		return exitUsage
	}
	return exitError
}

// singleDashLongFlags rewrites Terraform-style long flags written with one
// dash ("-check", "-out=plan", "-detailed-exitcode") to the two-dash form
// that cobra parses, so both spellings work. Single letters ("-o") and
// everything after "--" are left alone.
func singleDashLongFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(a, "=")
		if len(name) > 2 && name[0] == '-' && name[1] != '-' && isFlagName(name[1:]) {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

func isFlagName(s string) bool {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '-' && i > 0) {
			return false
		}
	}
	return true
}

// isUsageError reports whether err came from cobra's own argument and flag
// parsing rather than from a command's work.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Declarative GitOps deployment of WebAssembly apps",
		Long: `ferry deploys WebAssembly apps declared in HCL from a git repository:
it builds each component to .wasm, pushes it to an OCI registry, signs it
with cosign, plans against what every target runs now and applies — by hand
(plan/apply) or on every git push (agent, up).

Exit codes: 0 success, 1 failure, 2 usage error (or "changes present" for
plan -detailed-exitcode), 3 fmt -check found unformatted files.`,
		Example: `  ferry up examples        # everything locally: registry, host, agent (make run)
  ferry init myapp         # scaffold an app repository
  ferry validate myapp     # check the spec, with file:line:col diagnostics
  ferry fmt -check .       # fail if any .hcl file is not canonically formatted`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newValidateCmd(s),
		newFmtCmd(s),
		newInitCmd(s),
		newVersionCmd(s),
		newBuildCmd(s),
		newPushCmd(s),
		newKeygenCmd(s),
		newSignCmd(s),
		newVerifyCmd(s),
		newInspectCmd(s),
		newRegistryCmd(s),
		newPlanCmd(s),
		newApplyCmd(s),
		newDestroyCmd(s),
		newForceUnlockCmd(s),
		newAgentCmd(s),
		newInstallCmd(s),
		newFleetCmd(s),
		newUpCmd(s),
		newStatusCmd(s),
		newHistoryCmd(s),
		newRollbackCmd(s),
		newSuspendCmd(s, false),
		newSuspendCmd(s, true),
	)
	return root
}
