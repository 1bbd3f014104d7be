package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"

	"github.com/ferry-wasm/ferry/deploy"
)

var update = flag.Bool("update", false, "rewrite golden files and the fuzz seed corpus")

// markerRE finds expected diagnostics: a trailing "# ERROR: <summary>".
var markerRE = regexp.MustCompile(`#\s*ERROR:\s*(.+?)\s*$`)

type lineDiag struct {
	Line    int
	Summary string
}

func markers(src []byte) []lineDiag {
	var out []lineDiag
	for i, line := range strings.Split(string(src), "\n") {
		if m := markerRE.FindStringSubmatch(line); m != nil {
			out = append(out, lineDiag{Line: i + 1, Summary: m[1]})
		}
	}
	return out
}

func sortLineDiags(ds []lineDiag) {
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Summary < ds[j].Summary
	})
}

func renderDiags(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	var b bytes.Buffer
	w := hcl.NewDiagnosticTextWriter(&b, files, 100, false)
	_ = w.WriteDiagnostics(diags)
	return b.String()
}

// TestInvalid loads each spec/testdata/invalid/*.hcl alone and checks that
// the error diagnostics are exactly the "# ERROR:" markers of the file, by
// line and summary, and that each points into its line.
func TestInvalid(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 30 {
		t.Fatalf("only %d invalid cases; want at least 30", len(paths))
	}
	repo := fixtureRepo(t)
	kinds := map[string]bool{}
	for _, p := range paths {
		name := filepath.Base(p)
		t.Run(strings.TrimSuffix(name, ".hcl"), func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want := markers(src)
			if len(want) == 0 {
				t.Fatal("the file has no # ERROR: marker")
			}
			cfg, diags := LoadFiles(repo, map[string][]byte{name: src}, LoadOptions{})
			if cfg == nil {
				t.Fatal("LoadFiles returned a nil Config")
			}
			lines := strings.Split(string(src), "\n")
			var got []lineDiag
			for _, d := range diags {
				if d.Severity != hcl.DiagError {
					continue
				}
				if d.Subject == nil {
					t.Errorf("diagnostic %q has no source range", d.Summary)
					continue
				}
				if d.Detail == "" {
					t.Errorf("diagnostic %q has no detail", d.Summary)
				}
				s := d.Subject.Start
				if d.Subject.Filename != filepath.Join(repo, name) {
					t.Errorf("diagnostic %q is in file %q", d.Summary, d.Subject.Filename)
				}
				if s.Line < 1 || s.Line > len(lines) {
					t.Errorf("diagnostic %q at line %d, outside the file", d.Summary, s.Line)
				} else if n := utf8.RuneCountInString(lines[s.Line-1]); s.Column < 1 || s.Column > n+1 {
					t.Errorf("diagnostic %q at %d:%d, but line %d has %d characters", d.Summary, s.Line, s.Column, s.Line, n)
				}
				got = append(got, lineDiag{Line: s.Line, Summary: d.Summary})
			}
			sortLineDiags(want)
			sortLineDiags(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\nall diagnostics:\n%s", diff, renderDiags(cfg.Files, diags))
			}
			for _, w := range want {
				kinds[w.Summary] = true
			}
		})
	}
	t.Logf("%d invalid cases cover %d kinds of diagnostic", len(paths), len(kinds))
}

// validCase is the expected result of a spec/testdata/valid/<case>
// directory, kept in its want.json. "${DIR}" stands for the absolute path
// of the case directory.
type validCase struct {
	// Vars are passed as LoadOptions.Vars.
	Vars map[string]string `json:"vars,omitempty"`
	// Config is the loaded config.
	Config *Config `json:"config"`
	// Deploy is DeployApp of every app, by name.
	Deploy map[string]deploy.App `json:"deploy"`
}

// TestValid loads each spec/testdata/valid/<case>/ directory, checks that
// it has no diagnostics at all, and compares the typed Config and every
// DeployApp with the case's want.json (rewritten by -update).
func TestValid(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "valid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no valid cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, "want.json")
			raw, err := os.ReadFile(golden)
			if err != nil && !*update {
				t.Fatal(err)
			}
			var want validCase
			if len(raw) > 0 {
				raw = bytes.ReplaceAll(raw, []byte("${DIR}"), []byte(abs))
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("%s: %v", golden, err)
				}
			}
			cfg, diags := Load(abs, LoadOptions{Vars: want.Vars})
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics:\n%s", renderDiags(cfg.Files, diags))
			}
			got := validCase{Vars: want.Vars, Config: cfg, Deploy: map[string]deploy.App{}}
			for _, a := range cfg.Apps {
				da, ok := cfg.DeployApp(a.Name)
				if !ok {
					t.Fatalf("DeployApp(%q) found no app", a.Name)
				}
				got.Deploy[a.Name] = da
			}
			if *update {
				b, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				b = bytes.ReplaceAll(b, []byte(abs), []byte("${DIR}"))
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			opts := cmp.Options{
				cmpopts.IgnoreFields(Config{}, "Files"),
				cmpopts.IgnoreTypes(hcl.Range{}),
				cmpopts.EquateEmpty(),
			}
			if diff := cmp.Diff(want, got, opts); diff != "" {
				t.Errorf("result differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestExamplesValidate loads every example repository: each must load with
// no diagnostics at all.
func TestExamplesValidate(t *testing.T) {
	for _, name := range []string{"hello-wat", "hello-go", "kv-counter", "fleet"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "examples", name)
			cfg, diags := Load(dir, LoadOptions{})
			if len(diags) > 0 {
				t.Fatalf("diagnostics:\n%s", renderDiags(cfg.Files, diags))
			}
			if len(cfg.Apps) == 0 || len(cfg.Targets) == 0 {
				t.Fatalf("example has %d apps and %d targets; want at least one of each", len(cfg.Apps), len(cfg.Targets))
			}
			for _, a := range cfg.Apps {
				if _, ok := cfg.DeployApp(a.Name); !ok {
					t.Errorf("DeployApp(%q) failed", a.Name)
				}
			}
		})
	}
	// Spot checks of what each example is about.
	cfg, _ := Load(filepath.Join("..", "examples", "kv-counter"), LoadOptions{})
	if c := cfg.App("kv-counter").Components[0]; c.Executor != deploy.ExecutorReactor || c.Source.Kind != SourceGo ||
		fmt.Sprint(c.KeyValueStores) != "[default]" {
		t.Errorf("kv-counter component = %+v; want a reactor Go component using store default", c)
	}
	cfg, _ = Load(filepath.Join("..", "examples", "fleet"), LoadOptions{})
	if tg := cfg.Target("edge"); tg == nil || tg.Fleet == nil || len(tg.Fleet.Rollout.Waves) < 2 {
		t.Errorf("fleet example has no fleet target with a rollout of several waves")
	}
}

// hclFiles lists every committed .hcl file this package owns or checks:
// the examples and spec/testdata.
func hclFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, root := range []string{filepath.Join("..", "examples"), "testdata"} {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".hcl") {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestFormatCommitted checks that every committed .hcl file is already in
// canonical format, and that Format is idempotent on them.
func TestFormatCommitted(t *testing.T) {
	files := hclFiles(t)
	if len(files) < 35 {
		t.Fatalf("found only %d .hcl files", len(files))
	}
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got := Format(src)
		if *update && !bytes.Equal(got, src) {
			if err := os.WriteFile(p, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted; diff (-file +formatted):\n%s", p, cmp.Diff(string(src), string(got)))
		}
	}
}

func TestFormat(t *testing.T) {
	in := "app \"a\" {\ncomponent \"b\" {\nwasm=\"./x.wasm\"\nroutes=[\"/\"]\n}\n}\n"
	want := "app \"a\" {\n  component \"b\" {\n    wasm   = \"./x.wasm\"\n    routes = [\"/\"]\n  }\n}\n"
	if got := string(Format([]byte(in))); got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}
}
