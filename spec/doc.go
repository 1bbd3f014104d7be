// Package spec reads ferry's HCL language: every *.hcl file of a directory
// becomes one typed Config of apps, components, targets, rollout and trust
// policy, together with hcl.Diagnostics for every mistake found, each with a
// file:line:col range, a short summary and a full-sentence detail.
//
// Loading is pure: it reads the spec files and looks at the paths they name
// (existence, kind, whether they stay inside the spec directory), and does
// nothing else. It never builds, never runs commands and never touches the
// network. Load returns the best-effort Config together with all
// diagnostics, not just the first; a caller must check diags.HasErrors()
// before trusting the Config.
//
// The language is described in LANGUAGE.md beside this file.
//
// spec imports only hcl, cty, the standard library and the leaf package
// deploy; Config.DeployApp converts an app into the secret-free
// deploy.App value that travels along the rest of the pipeline.
package spec
