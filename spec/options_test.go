package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const varsSpec = `
variable "greeting" {
  default = "hello"
}

variable "api_token" {
  secret = true
}

app "hello" {
  component "web" {
    wasm = "./hello.wasm"
    env = {
      GREETING = var.greeting
    }
    variables = {
      token    = "{{ api_token }}"
      greeting = "{{ greeting }}"
    }
  }
}
`

func TestLoadOptionsVars(t *testing.T) {
	repo := fixtureRepo(t)
	const secret = "s3cr3t-value-never-stored"
	cfg, diags := LoadFiles(repo, map[string][]byte{"ferry.hcl": []byte(varsSpec)}, LoadOptions{Vars: map[string]string{
		"greeting":  "howdy",
		"api_token": secret,
		"nope":      "x",
	}})
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, map[hcl.DiagnosticSeverity]string{hcl.DiagError: "error", hcl.DiagWarning: "warning"}[d.Severity]+": "+d.Summary)
		if strings.Contains(d.Detail, secret) {
			t.Errorf("diagnostic %q shows the secret value", d.Summary)
		}
	}
	want := "warning: Value for secret variable ignored|error: Value for undeclared variable"
	if got := strings.Join(summaries, "|"); got != want {
		t.Errorf("diagnostics = %s; want %s", got, want)
	}
	if got := cfg.App("hello").Component("web").Env["GREETING"]; got != "howdy" {
		t.Errorf("GREETING = %q; want the value given in Vars", got)
	}
	da, ok := cfg.DeployApp("hello")
	if !ok {
		t.Fatal("DeployApp failed")
	}
	if v := da.Variables["greeting"]; v.Default == nil || *v.Default != "howdy" || v.Secret {
		t.Errorf("deploy variable greeting = %+v; want default howdy", v)
	}
	if v := da.Variables["api_token"]; v.Default != nil || !v.Secret {
		t.Errorf("deploy variable api_token = %+v; want secret without value", v)
	}
	for _, x := range []any{cfg, da} {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("the secret value reached %T: %s", x, b)
		}
	}
	if _, ok := cfg.DeployApp("missing"); ok {
		t.Error("DeployApp of a missing app succeeded")
	}
}

func TestLoadDirectory(t *testing.T) {
	repo := fixtureRepo(t)
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// No spec files yet.
	_, diags := Load(repo, LoadOptions{})
	if len(diags) != 1 || diags[0].Summary != "No spec files" {
		t.Errorf("empty dir: %v", diags)
	}
	_, diags = Load(filepath.Join(repo, "missing"), LoadOptions{})
	if len(diags) != 1 || diags[0].Summary != "Cannot read spec directory" {
		t.Errorf("missing dir: %v", diags)
	}

	write("apps.hcl", "app \"hello\" {\n  component \"web\" {\n    wasm = \"./hello.wasm\"\n  }\n}\n")
	write("targets.hcl", "target \"local\" {\n  type     = \"host\"\n  apps     = [\"hello\"]\n  endpoint = \"http://127.0.0.1:1\"\n}\n")
	write(".#apps.hcl", "this is an editor lock file, not a spec {")
	write("notes.txt", "not a spec {")
	cfg, diags := Load(repo, LoadOptions{})
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", renderDiags(cfg.Files, diags))
	}
	if len(cfg.Files) != 2 || cfg.App("hello") == nil || cfg.Target("local") == nil {
		t.Errorf("Load read %d files, app %v, target %v", len(cfg.Files), cfg.App("hello"), cfg.Target("local"))
	}
	if cfg.App("nope") != nil || cfg.Target("nope") != nil || cfg.Variable("nope") != nil || cfg.App("hello").Component("nope") != nil {
		t.Error("lookups of missing names found something")
	}

	// The spec directory reached through a symbolic link: paths inside it
	// are still inside.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(repo, link); err != nil {
		t.Fatal(err)
	}
	cfg, diags = Load(link, LoadOptions{})
	if len(diags) > 0 {
		t.Fatalf("through a symlink:\n%s", renderDiags(cfg.Files, diags))
	}
	if got, want := cfg.App("hello").Component("web").Source.Wasm, filepath.Join(link, "hello.wasm"); got != want {
		t.Errorf("Wasm = %q; want %q", got, want)
	}
}

func TestFunctionNames(t *testing.T) {
	names := strings.Join(FunctionNames(), " ")
	for _, want := range []string{"upper", "lower", "format", "join", "split", "concat", "merge", "length",
		"coalesce", "contains", "keys", "values", "lookup", "min", "max", "replace", "trimspace", "regex",
		"jsonencode", "jsondecode", "try", "can"} {
		if !strings.Contains(" "+names+" ", " "+want+" ") {
			t.Errorf("function %s is missing from %s", want, names)
		}
	}
	for _, banned := range []string{"file", "timestamp", "uuid", "range", "indent"} {
		if strings.Contains(" "+names+" ", " "+banned+" ") {
			t.Errorf("function %s should not be offered", banned)
		}
	}
}
