package main

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// scaffoldFS holds the files `ferry init` writes. Names ending in .tmpl are
// rendered with text/template and lose the suffix; gitignore.tmpl becomes
// .gitignore.
//
//go:embed scaffold
var scaffoldFS embed.FS

var nameRE = regexp.MustCompile(`[^a-z0-9-]+`)

// appName derives a valid app name (^[a-z][a-z0-9-]{0,62}$) from a directory.
func appName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	n := nameRE.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-")
	n = strings.Trim(n, "-")
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		n = "app-" + n
	}
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

func newInitCmd(s streams) *cobra.Command {
	var name string
	var force bool
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Scaffold an app repository that validates",
		Long: `init writes a small app into DIR (default "."): a ferry.hcl with one app
of two components — a prebuilt WAT module and a Go program built for
wasip1 — and a host target. It never overwrites a file unless --force.`,
		Example: `  ferry init myapp && ferry validate myapp
  ferry init --name shop .`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if name == "" {
				name = appName(dir)
			}
			if !regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`).MatchString(name) {
				return withCode(exitUsage, fmt.Errorf("invalid app name %q: use lower-case letters, digits and '-', starting with a letter", name))
			}
			written, err := scaffold(dir, name, force)
			if err != nil {
				return withCode(exitError, err)
			}
			for _, f := range written {
				fmt.Fprintln(s.out, "created", f)
			}
			fmt.Fprintf(s.out, "\nApp %q is ready. Next:\n  ferry validate %s\n", name, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "app name (default: derived from DIR)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

// scaffold renders the embedded template tree into dir. It checks every
// destination first, so it either writes all files or none.
func scaffold(dir, name string, force bool) ([]string, error) {
	type file struct {
		path string
		data []byte
	}
	var files []file
	err := fs.WalkDir(scaffoldFS, "scaffold", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := scaffoldFS.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "scaffold/")
		if strings.HasSuffix(rel, ".tmpl") {
			rel = strings.TrimSuffix(rel, ".tmpl")
			t, err := template.New(rel).Parse(string(data))
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, struct{ Name string }{name}); err != nil {
				return err
			}
			data = buf.Bytes()
		}
		if rel == "gitignore" {
			rel = ".gitignore"
		}
		files = append(files, file{filepath.Join(dir, filepath.FromSlash(rel)), data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !force {
		for _, f := range files {
			if _, err := os.Stat(f.path); err == nil {
				return nil, fmt.Errorf("%s already exists; nothing was written (use --force to overwrite)", f.path)
			}
		}
	}
	var written []string
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return written, err
		}
		written = append(written, f.path)
	}
	return written, nil
}
