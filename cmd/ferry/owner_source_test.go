package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOwnerSourceCLIAndAgentAgree: `ferry plan DIR` in a clone (a real git
// work tree with an origin remote) derives the same spec identity as the
// agent watching that repository by another spelling of its URL, and the
// same path; outside a work tree it is the directory; -source overrides.
func TestOwnerSourceCLIAndAgentAgree(t *testing.T) {
	root := t.TempDir()
	clone := filepath.Join(root, "clone")
	spec := filepath.Join(clone, "deploy", "prod")
	if err := os.MkdirAll(spec, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", clone},
		{"-C", clone, "remote", "add", "origin", "https://git.test/acme/apps.git"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cli, err := specSource(spec)
	if err != nil {
		t.Fatal(err)
	}
	const want = "git:git.test/acme/apps//deploy/prod"
	if cli != want {
		t.Errorf("specSource(clone/deploy/prod) = %q, want %q", cli, want)
	}
	if agent := agentSource(ownerFlags{}, "git@git.test:acme/apps.git", "deploy/prod"); agent != cli {
		t.Errorf("agent source %q, CLI source %q: they must agree", agent, cli)
	}
	if agent := agentSource(ownerFlags{}, clone, "deploy/prod"); agent != cli {
		t.Errorf("agent on the local clone: source %q, CLI source %q: they must agree", agent, cli)
	}
	if got, _ := (&ownerFlags{source: "team-a"}).sourceFor(spec); got != "team-a" {
		t.Errorf("-source team-a gives %q", got)
	}

	// No origin: the work tree's own path, as the agent names a local repo.
	if out, err := exec.Command("git", "-C", clone, "remote", "remove", "origin").CombinedOutput(); err != nil {
		t.Fatalf("git remote remove: %v\n%s", err, out)
	}
	cli, err = specSource(spec)
	if err != nil {
		t.Fatal(err)
	}
	realClone, _ := filepath.EvalSymlinks(clone)
	if agent := agentSource(ownerFlags{}, realClone, "deploy/prod"); cli != agent {
		t.Errorf("without origin: CLI source %q, agent on the local repo %q", cli, agent)
	}

	plain := filepath.Join(root, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	realPlain, _ := filepath.EvalSymlinks(plain)
	if got, err := specSource(plain); err != nil || got != "dir:"+filepath.ToSlash(realPlain) {
		t.Errorf("specSource outside git = %q, %v; want dir:%s", got, err, realPlain)
	}
}
