package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ferry runs the CLI in-process and returns exit code, stdout and stderr.
func ferry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateExamples(t *testing.T) {
	dirs, err := filepath.Glob("../../examples/*")
	if err != nil || len(dirs) < 4 {
		t.Fatalf("want at least 4 examples, got %v (%v)", dirs, err)
	}
	for _, d := range dirs {
		t.Run(filepath.Base(d), func(t *testing.T) {
			code, out, errs := ferry(t, "validate", d)
			if code != exitOK {
				t.Fatalf("validate %s: exit %d\n%s%s", d, code, out, errs)
			}
			if !strings.Contains(out, "is valid") {
				t.Errorf("stdout = %q, want a success line", out)
			}
		})
	}
}

func TestValidateInvalidReportsPositionAndExits1(t *testing.T) {
	dir := t.TempDir()
	src := "app \"hello\" {\n  component \"web\" {\n    routes = [\"/\"]\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "ferry.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := ferry(t, "validate", dir)
	if code != exitError {
		t.Fatalf("exit = %d, want %d; stderr:\n%s", code, exitError, errs)
	}
	if !strings.Contains(errs, "ferry.hcl:2") {
		t.Errorf("stderr does not name ferry.hcl:2 (the component with no source):\n%s", errs)
	}

	code, out, _ := ferry(t, "validate", "-o", "json", dir)
	if code != exitError {
		t.Fatalf("json exit = %d, want %d", code, exitError)
	}
	var res struct {
		Valid       bool
		Diagnostics []struct {
			Summary string
			Range   struct {
				Filename string
				Start    struct{ Line, Column int }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bad json %q: %v", out, err)
	}
	if res.Valid || len(res.Diagnostics) == 0 {
		t.Fatalf("json = %+v, want invalid with diagnostics", res)
	}
	d := res.Diagnostics[0]
	if d.Range.Start.Line != 2 || !strings.HasSuffix(d.Range.Filename, "ferry.hcl") {
		t.Errorf("diagnostic at %s:%d, want ferry.hcl:2", d.Range.Filename, d.Range.Start.Line)
	}
}

func TestInitScaffoldsAValidRepo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Shop")
	code, out, errs := ferry(t, "init", dir)
	if code != exitOK {
		t.Fatalf("init: exit %d\n%s%s", code, out, errs)
	}
	for _, f := range []string{"ferry.hcl", "web/hello.wat", "web/hello.wasm", "api/main.go", "api/go.mod", ".gitignore"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
	}
	hcl, _ := os.ReadFile(filepath.Join(dir, "ferry.hcl"))
	if !strings.Contains(string(hcl), `app "my-shop"`) {
		t.Errorf("app name not derived from dir:\n%s", hcl)
	}
	if code, out, errs := ferry(t, "validate", dir); code != exitOK {
		t.Fatalf("scaffold does not validate: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := ferry(t, "fmt", "-check", dir); code != exitOK {
		t.Fatalf("scaffold is not canonically formatted: %d\n%s", code, out)
	}
	// A second init refuses to overwrite and writes nothing.
	if code, _, errs := ferry(t, "init", dir); code != exitError || !strings.Contains(errs, "already exists") {
		t.Fatalf("second init: exit %d, stderr %q; want refusal", code, errs)
	}
}

func TestFmtCheckAndRewrite(t *testing.T) {
	dir := t.TempDir()
	ugly := "app \"a\" {\ncomponent \"b\" {\nwasm=\"./x.wasm\"\nroutes=[\"/\"]\n}\n}\n"
	f := filepath.Join(dir, "ferry.hcl")
	if err := os.WriteFile(f, []byte(ugly), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := ferry(t, "fmt", "-check", dir)
	if code != exitFormat || !strings.Contains(out, "ferry.hcl") {
		t.Fatalf("fmt -check: exit %d out %q, want %d listing the file", code, out, exitFormat)
	}
	if b, _ := os.ReadFile(f); string(b) != ugly {
		t.Fatal("fmt -check changed the file")
	}
	if code, _, errs := ferry(t, "fmt", dir); code != exitOK {
		t.Fatalf("fmt: exit %d: %s", code, errs)
	}
	b, _ := os.ReadFile(f)
	if !strings.Contains(string(b), "  component \"b\" {") || !strings.Contains(string(b), "wasm   = \"./x.wasm\"") {
		t.Errorf("not formatted:\n%s", b)
	}
	if code, _, _ := ferry(t, "fmt", "-check", dir); code != exitOK {
		t.Fatalf("fmt -check after fmt: exit %d", code)
	}
	// Syntax errors are reported and the file is left alone.
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("app \"x\" {\n"), 0o644)
	if code, _, errs := ferry(t, "fmt", dir); code != exitError || !strings.Contains(errs, "bad.hcl:") {
		t.Fatalf("fmt with syntax error: exit %d stderr %q", code, errs)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	if code, _, _ := ferry(t, "validate", "--no-such-flag"); code != exitUsage {
		t.Fatalf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := ferry(t, "validate", "-o", "yaml", "."); code != exitUsage {
		t.Fatalf("bad -o: exit %d, want %d", code, exitUsage)
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, _ := ferry(t, "version", "-o", "json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.GoVersion == "" {
		t.Fatalf("version -o json: %d %q", code, out)
	}
}

func TestEveryCommandHasExamples(t *testing.T) {
	root := newRootCmd(streams{})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("ferry %s has no --help examples", c.Name())
		}
		for _, sub := range c.Commands() {
			if strings.TrimSpace(sub.Example) == "" {
				t.Errorf("ferry %s %s has no --help examples", c.Name(), sub.Name())
			}
		}
	}
}
