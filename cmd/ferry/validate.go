package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/spec"
)

// varFlags is the repeated -var NAME=VALUE flag, as in Terraform.
type varFlags struct{ vals []string }

func (v *varFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&v.vals, "var", nil, "set a variable, NAME=VALUE (repeatable)")
}

func (v *varFlags) options() (spec.LoadOptions, error) {
	opts := spec.LoadOptions{Vars: map[string]string{}}
	for _, kv := range v.vals {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return opts, fmt.Errorf("invalid argument %q for --var: want NAME=VALUE", kv)
		}
		opts.Vars[name] = val
	}
	return opts, nil
}

// loadSpec loads dir and renders its diagnostics to errw. It returns the
// config and an error when there were errors.
func loadSpec(dir string, opts spec.LoadOptions, errw io.Writer) (*spec.Config, error) {
	cfg, diags := spec.Load(dir, opts)
	if len(diags) > 0 {
		writeDiagnostics(errw, cfg, diags)
	}
	if diags.HasErrors() {
		return cfg, withCode(exitError, fmt.Errorf("%s: %d error(s) in the spec; nothing was done", dir, countErrors(diags)))
	}
	return cfg, nil
}

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// writeDiagnostics renders diagnostics with file:line:col and a source
// snippet.
func writeDiagnostics(w io.Writer, cfg *spec.Config, diags hcl.Diagnostics) {
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files
	}
	newDiagWriter(w, files).write(diags)
}

// jsonDiagnostic is the -o json form of one diagnostic.
type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func toJSONDiagnostics(diags hcl.Diagnostics) []jsonDiagnostic {
	out := make([]jsonDiagnostic, 0, len(diags))
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if d.Subject != nil {
			r := d.Subject
			jd.Range = &jsonRange{
				Filename: r.Filename,
				Start:    jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      jsonPos{r.End.Line, r.End.Column, r.End.Byte},
			}
		}
		out = append(out, jd)
	}
	return out
}

func newValidateCmd(s streams) *cobra.Command {
	var o outputFlag
	var vars varFlags
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a spec directory for mistakes without building or deploying",
		Long: `validate loads every *.hcl file of DIR (default ".") and reports every
mistake it finds, each with file:line:col. It never builds and never touches
the network. Exit code 0 means valid, 1 invalid.`,
		Example: `  ferry validate
  ferry validate examples/hello-wat
  ferry validate --var greeting=hi -o json .`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			opts, err := vars.options()
			if err != nil {
				return withCode(exitUsage, err)
			}
			cfg, diags := spec.Load(dir, opts)
			if o.json() {
				res := struct {
					Valid       bool             `json:"valid"`
					ErrorCount  int              `json:"error_count"`
					Apps        []string         `json:"apps"`
					Targets     []string         `json:"targets"`
					Diagnostics []jsonDiagnostic `json:"diagnostics"`
				}{Valid: !diags.HasErrors(), ErrorCount: countErrors(diags), Apps: []string{}, Targets: []string{}, Diagnostics: toJSONDiagnostics(diags)}
				if cfg != nil {
					for _, a := range cfg.Apps {
						res.Apps = append(res.Apps, a.Name)
					}
					for _, t := range cfg.Targets {
						res.Targets = append(res.Targets, t.Name)
					}
				}
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
				if diags.HasErrors() {
					return withCode(exitError, nil)
				}
				return nil
			}
			if len(diags) > 0 {
				writeDiagnostics(s.err, cfg, diags)
			}
			if diags.HasErrors() {
				return withCode(exitError, fmt.Errorf("%s: %d error(s)", dir, countErrors(diags)))
			}
			na, nt := 0, 0
			if cfg != nil {
				na, nt = len(cfg.Apps), len(cfg.Targets)
			}
			fmt.Fprintf(s.out, "Success! %s is valid: %d app(s), %d target(s).\n", dir, na, nt)
			return nil
		},
	}
	o.register(cmd)
	vars.register(cmd)
	return cmd
}
