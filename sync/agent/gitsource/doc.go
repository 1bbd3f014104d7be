// Package gitsource is the agent's git source: a bare mirror of one branch
// of the spec repository, fetched with go-git (Source), and a checkout of
// a commit's tree that no symlink or ".." leaves. GitAuth holds the
// credentials (SSH key, HTTPS password or token, known hosts, CA bundle),
// loaded from the environment by GitAuthFromEnv.
//
// Its errors say whether retrying helps: ErrGitUnreachable (may help),
// ErrGitAuth and ErrGitURL (do not).
//
// This package imports go-git and the standard library, nothing of ferry
// but internal helpers.
package gitsource
