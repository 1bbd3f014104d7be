package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/sync/agent"
)

// upInfoFile is where `ferry up` records how to reach its agent, relative
// to the root of the work tree it serves, so that `ferry status` and
// friends work without flags anywhere in that work tree.
const upInfoFile = ".ferry/up/agent.json"

// findUpInfo returns the contents of upInfoFile in the current directory
// or the nearest parent that has one.
func findUpInfo() ([]byte, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(upInfoFile)))
		if err == nil {
			return b, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, err
		}
		dir = parent
	}
}

type upInfo struct {
	URL       string `json:"url"`
	TokenFile string `json:"token_file"`
}

// agentFlags say how to reach an agent's status API.
type agentFlags struct {
	url string
}

func (a *agentFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.url, "agent", os.Getenv("FERRY_AGENT_URL"), "agent API URL (default $FERRY_AGENT_URL, else the local `ferry up`)")
}

// client returns a status API client: URL from --agent/FERRY_AGENT_URL,
// token from FERRY_AGENT_TOKEN/FERRY_AGENT_TOKEN_FILE, else what a local
// `ferry up` recorded in .ferry/up/agent.json of this directory or a parent.
func (a *agentFlags) client() (*agent.Client, error) {
	url := a.url
	token, err := secretFrom("FERRY_AGENT_TOKEN", "FERRY_AGENT_TOKEN_FILE")
	if err != nil {
		return nil, err
	}
	if b, err := findUpInfo(); err == nil && (url == "" || token == "") {
		var info upInfo
		if json.Unmarshal(b, &info) == nil {
			if url == "" {
				url = info.URL
			}
			if token == "" && info.TokenFile != "" {
				if t, err := os.ReadFile(info.TokenFile); err == nil {
					token = string(trimNewline(t))
				}
			}
		}
	}
	if url == "" {
		url = "http://127.0.0.1:8090"
	}
	return &agent.Client{BaseURL: strings.TrimSuffix(url, "/"), Token: token}, nil
}

func newStatusCmd(s streams) *cobra.Command {
	var af agentFlags
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the agent is doing: commits, apps, errors, pins",
		Example: `  ferry status
  ferry status --agent http://127.0.0.1:8090 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return withCode(exitError, err)
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, st)
			}
			fmt.Fprintf(s.out, "Repository: %s (branch %s, path %s)\n", st.Repo, st.Branch, st.Path)
			fmt.Fprintf(s.out, "Fetched:    %s\nDeploying:  %s\n", short(st.FetchedCommit), short(st.DesiredCommit))
			if st.LastSuccessfulCommit != "" {
				fmt.Fprintf(s.out, "Last good:  %s at %s\n", short(st.LastSuccessfulCommit), st.LastSuccessfulAt.Format(time.RFC3339))
			}
			if !st.NextRoundAt.IsZero() {
				fmt.Fprintf(s.out, "Next round: %s\n", st.NextRoundAt.Format(time.RFC3339))
			}
			if len(st.Apps) > 0 {
				fmt.Fprintf(s.out, "\n%-16s %-10s %-14s %-9s %-8s %-8s %s\n", "APP", "TARGET", "DIGEST", "STATUS", "HEALTHY", "ACTION", "RESULT")
				for _, a := range st.Apps {
					if len(a.Targets) == 0 {
						fmt.Fprintf(s.out, "%-16s %-10s %-14s %s\n", a.Name, "-", short(strings.TrimPrefix(a.Desired, "sha256:")), firstNonEmpty(a.Held, a.Error))
					}
					for _, t := range a.Targets {
						res := t.Result
						if t.Error != "" {
							res += ": " + t.Error
						}
						if a.Suspended {
							res += " (suspended)"
						}
						if t.Pinned {
							res += " (pinned)"
						}
						fmt.Fprintf(s.out, "%-16s %-10s %-14s %-9s %-8t %-8s %s\n", a.Name, t.Target, short(strings.TrimPrefix(t.Digest, "sha256:")), t.Status, t.Healthy, t.Action, res)
						if t.Rollout != "" {
							fmt.Fprintf(s.out, "  %s\n", t.Rollout)
						}
					}
				}
			}
			for _, a := range st.Apps {
				if a.Default {
					fmt.Fprintf(s.out, "Default app: %s (its spec declares no hosts: it answers every host name no other app claims)\n", a.Name)
				}
			}
			for _, p := range st.Pins {
				b, _ := json.Marshal(p)
				fmt.Fprintf(s.out, "Pinned: %s\n", b)
			}
			for _, rb := range st.HostRollbacks {
				fmt.Fprintf(s.out, "Rolled back by target %s: app %s from %s to %s at %s (%s); %s is held back until a commit changes the app\n",
					rb.Target, rb.App, short(strings.TrimPrefix(rb.From, "sha256:")), short(strings.TrimPrefix(rb.To, "sha256:")),
					rb.At.Format(time.RFC3339), rb.Reason, short(strings.TrimPrefix(rb.From, "sha256:")))
			}
			for _, e := range st.Errors {
				fmt.Fprintf(s.out, "Error: %s\n", e)
			}
			return nil
		},
	}
	af.register(cmd)
	o.register(cmd)
	return cmd
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "(none)"
	}
	return sha
}

func newHistoryCmd(s streams) *cobra.Command {
	var af agentFlags
	var o outputFlag
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "history [APP]",
		Short: "Show the agent's rounds, or what each round did to one app",
		Example: `  ferry history              # the rounds, newest first
  ferry history hello-wat --limit 5 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return withCode(exitError, err)
			}
			if len(args) == 0 {
				rounds, err := c.Rounds(cmd.Context(), limit)
				if err != nil {
					return withCode(exitError, err)
				}
				if o.json() {
					return writeJSON(s.out, rounds)
				}
				fmt.Fprintf(s.out, "%-6s %-20s %-16s %-12s %-10s %s\n", "ROUND", "STARTED", "TRIGGER", "COMMIT", "RESULT", "CHANGES")
				for _, r := range rounds {
					changes := 0
					for _, a := range r.Apps {
						if a.Action != "no-op" {
							changes++
						}
					}
					line := fmt.Sprintf("%-6d %-20s %-16s %-12s %-10s %d", r.ID, r.StartedAt.Format("2006-01-02T15:04:05"), r.Trigger, short(r.Commit), r.Result, changes)
					if r.Error != "" {
						line += "  " + r.Error
					}
					fmt.Fprintln(s.out, line)
				}
				return nil
			}
			recs, err := c.History(cmd.Context(), args[0], limit)
			if !all {
				kept := recs[:0]
				for _, r := range recs {
					if r.Action != "no-op" {
						kept = append(kept, r)
					}
				}
				recs = kept
			}
			if err != nil {
				return withCode(exitError, err)
			}
			if o.json() {
				return writeJSON(s.out, recs)
			}
			fmt.Fprintf(s.out, "%-6s %-20s %-12s %-10s %-10s %-10s %-20s %s\n", "ROUND", "TIME", "COMMIT", "APP", "TARGET", "ACTION", "DIGEST", "RESULT")
			for _, r := range recs {
				res := r.Result
				if r.Error != "" {
					res += ": " + r.Error
				}
				fmt.Fprintf(s.out, "%-6d %-20s %-12s %-10s %-10s %-10s %-20s %s\n", r.Round, r.Time.Format("2006-01-02T15:04:05"), short(r.Commit), r.App, r.Target, r.Action, short(strings.TrimPrefix(r.Digest, "sha256:")), res)
				if r.Rollout != "" {
					fmt.Fprintf(s.out, "       %s\n", r.Rollout)
				}
			}
			return nil
		},
	}
	af.register(cmd)
	o.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "look at most this many records back")
	cmd.Flags().BoolVar(&all, "all", false, "with APP: also list rounds that left the app unchanged")
	return cmd
}

func newRollbackCmd(s streams) *cobra.Command {
	var af agentFlags
	var to string
	cmd := &cobra.Command{
		Use:   "rollback APP [DIGEST]",
		Short: "Pin an app to a recorded version until a newer commit changes it",
		Long: `rollback pins APP at DIGEST (default: the version before the current one,
from the history). The pin holds across new commits that do not change the
app, so auto-sync does not undo it; the first commit that changes the app
supersedes it.`,
		Example: `  ferry rollback hello-wat
  ferry rollback hello-wat --to sha256:8f9838cf...`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return withCode(exitError, err)
			}
			digest := to
			if len(args) == 2 {
				digest = args[1]
			}
			pin, err := c.Rollback(cmd.Context(), args[0], digest)
			if err != nil {
				return withCode(exitError, err)
			}
			b, _ := json.Marshal(pin)
			fmt.Fprintf(s.out, "Pinned %s: %s\n", args[0], b)
			return nil
		},
	}
	af.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "digest (or unique prefix) to pin; default: the version before the current one")
	return cmd
}

func newSuspendCmd(s streams, resume bool) *cobra.Command {
	var af agentFlags
	use, short := "suspend APP", "Leave an app as it runs: the agent stops changing it"
	example := "  ferry suspend hello-wat"
	if resume {
		use, short, example = "resume APP", "Let the agent manage a suspended app again", "  ferry resume hello-wat"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return withCode(exitError, err)
			}
			if resume {
				err = c.Resume(cmd.Context(), args[0])
			} else {
				err = c.Suspend(cmd.Context(), args[0])
			}
			if err != nil {
				return withCode(exitError, err)
			}
			verb := "Suspended"
			if resume {
				verb = "Resumed"
			}
			fmt.Fprintf(s.out, "%s %s.\n", verb, args[0])
			return nil
		},
	}
	af.register(cmd)
	return cmd
}

// writeUpInfo records how to reach the agent of `ferry up` in dir.
func writeUpInfo(dataDir, url, tokenFile string) error {
	abs, err := filepath.Abs(tokenFile)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(upInfo{URL: url, TokenFile: abs}, "", "  ")
	return writeFileAtomic(filepath.Join(dataDir, "agent.json"), append(b, '\n'))
}
