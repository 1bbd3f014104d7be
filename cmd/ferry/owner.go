package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/sync/plan"
)

// ownerFlags choose who owns the apps a command deploys (see
// plan.PlanOptions.Source and Adopt).
type ownerFlags struct {
	source string
	adopt  bool
}

func (o *ownerFlags) register(cmd *cobra.Command, adopt bool) {
	cmd.Flags().StringVar(&o.source, "source", "", `identity of this spec in the owner recorded with each app, OWNER = SOURCE#TARGET (default: "git:" + DIR's origin remote without scheme or .git, + "//" + DIR's path in the repository; "dir:" + DIR's absolute path outside a repository)`)
	if adopt {
		cmd.Flags().BoolVar(&o.adopt, "adopt", false, "take over apps the spec names that another spec owns or that have no recorded owner (by default such a clash is an error)")
	}
}

// sourceFor returns -source, or the identity derived from dir (specSource).
func (o *ownerFlags) sourceFor(dir string) (string, error) {
	if o.source != "" {
		return o.source, nil
	}
	return specSource(dir)
}

// specSource derives a spec directory's stable identity: inside a git work
// tree, plan.SourceID of the "origin" remote's URL (the work tree's root
// when it has no origin) and dir's path in the work tree, so that every
// clone of one repository, and the agent watching it, agree; outside one,
// "dir:" and dir's absolute path.
func specSource(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("spec directory: %w", err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return "dir:" + filepath.ToSlash(abs), nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the git repository of %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "dir:" + filepath.ToSlash(abs), nil // a bare repository: no work tree to be in
	}
	root := wt.Filesystem.Root()
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return "", fmt.Errorf("spec directory %s in work tree %s: %w", dir, root, err)
	}
	loc := root
	if rem, err := repo.Remote("origin"); err == nil && len(rem.Config().URLs) > 0 {
		loc = rem.Config().URLs[0]
	}
	return plan.SourceID(loc, rel), nil
}

// agentSource is the agent's spec identity: -source, or plan.SourceID of
// the watched repository and the spec's path in it. A local work tree is
// named as `ferry plan` names it (by its origin remote, when it has one),
// so `ferry agent --repo .` and `ferry plan DIR` agree.
func agentSource(o ownerFlags, repo, path string) string {
	if o.source != "" {
		return o.source
	}
	if st, err := os.Stat(repo); err == nil && st.IsDir() {
		if s, err := specSource(filepath.Join(repo, path)); err == nil && strings.HasPrefix(s, "git:") {
			return s
		}
	}
	return plan.SourceID(repo, path)
}
