package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// outputFlag is the -o/--output flag shared by commands with a JSON view.
type outputFlag struct{ format string }

func (o *outputFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", `output format: "text" or "json"`)
	cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) { //nolint:errcheck // flag exists
		return []string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if o.format != "text" && o.format != "json" {
			return fmt.Errorf("invalid argument %q for -o: want text or json", o.format)
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

func (o *outputFlag) json() bool { return o.format == "json" }
