package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/spec"
)

func newFmtCmd(s streams) *cobra.Command {
	var check, recursive, list bool
	cmd := &cobra.Command{
		Use:   "fmt [DIR|FILE...]",
		Short: "Rewrite .hcl files in canonical format",
		Long: `fmt rewrites .hcl files in the canonical HCL style (alignment, spacing,
indentation). With -check it changes nothing and exits 3 when a file would
change, listing those files. A file with syntax errors is reported and left
untouched.`,
		Example: `  ferry fmt              # format *.hcl in the current directory
  ferry fmt -r .          # and in every subdirectory
  ferry fmt -check -r .   # CI: fail if anything is unformatted`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := hclFiles(args, recursive)
			if err != nil {
				return withCode(exitError, err)
			}
			var unformatted []string
			bad := 0
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					return withCode(exitError, err)
				}
				if file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos); diags.HasErrors() {
					newDiagWriter(s.err, map[string]*hcl.File{f: file}).write(diags)
					bad++
					continue
				}
				out := spec.Format(src)
				if bytes.Equal(out, src) {
					continue
				}
				unformatted = append(unformatted, f)
				if check {
					continue
				}
				if err := writeFileAtomic(f, out); err != nil {
					return withCode(exitError, err)
				}
			}
			if check || list {
				for _, f := range unformatted {
					fmt.Fprintln(s.out, f)
				}
			}
			if bad > 0 {
				return withCode(exitError, fmt.Errorf("%d file(s) have syntax errors and were left unchanged", bad))
			}
			if check && len(unformatted) > 0 {
				return withCode(exitFormat, fmt.Errorf("%d file(s) are not canonically formatted; run `ferry fmt`", len(unformatted)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "do not write; exit 3 if any file would change")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "also format files in subdirectories")
	cmd.Flags().BoolVarP(&list, "list", "l", true, "list the files whose formatting changed")
	return cmd
}

// hclFiles expands args (files or directories) into .hcl file paths.
func hclFiles(args []string, recursive bool) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != a && (!recursive || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(p, ".hcl") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeFileAtomic replaces path with data via a temporary file and rename,
// keeping the file's mode.
func writeFileAtomic(path string, data []byte) error {
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
