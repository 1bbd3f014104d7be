package builder

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMatchGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*.c", "main.c", true},
		{"*.c", "src/main.c", false},
		{"src", "src/a/b.c", true},
		{"src/*.c", "src/main.c", true},
		{"src/*.c", "src/x/main.c", false},
		{"src/**/*.c", "src/main.c", true},
		{"src/**/*.c", "src/x/y/main.c", true},
		{"src/**/*.c", "lib/main.c", false},
		{"**", "anything/at/all", true},
		{"**/*.rs", "a/b/lib.rs", true},
		{"**/*.rs", "lib.rs", true},
		{"./Cargo.toml", "Cargo.toml", true},
		{"Cargo.toml", "Cargo.lock", false},
		{"src/[ab].c", "src/b.c", true},
		{"src/[ab].c", "src/c.c", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	t.Parallel()
	for p, ok := range map[string]bool{
		"src/**/*.go": true, "Cargo.toml": true, "": false, "/etc/passwd": false,
		"../x": false, "a/../../x": false, "src/[": false,
	} {
		if err := checkPattern(p); (err == nil) != ok {
			t.Errorf("checkPattern(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestParseGoMod(t *testing.T) {
	t.Parallel()
	gomod := `// a comment
module "example.com/app" // trailing

go 1.26

require (
	example.com/lib v1.0.0
	example.com/other v1.2.0 // indirect
)

replace example.com/lib => ../lib

replace (
	example.com/other v1.2.0 => example.com/fork v1.2.1
	example.com/local => ./local
	example.com/abs v0.1.0 => /srv/abs v0.0.0
)
`
	mod, reps := parseGoMod([]byte(gomod))
	if mod != "example.com/app" {
		t.Errorf("module = %q", mod)
	}
	want := []localReplace{
		{"example.com/lib", filepath.FromSlash("../lib")},
		{"example.com/local", filepath.FromSlash("./local")},
		{"example.com/abs", "/srv/abs"},
	}
	if diff := cmp.Diff(want, reps, cmp.AllowUnexported(localReplace{})); diff != "" {
		t.Errorf("replaces (-want +got):\n%s", diff)
	}
}

// TestGoSourcesReplaceAndEmbed: a locally replaced module and embedded
// files are inputs; a nested module and test files are not.
func TestGoSourcesReplaceAndEmbed(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"app/go.mod": "module example.com/app\n\ngo 1.26\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n",
		"app/main.go": `package main

import (
	"example.com/app/internal/web"
	"example.com/app/internal/x"
	"example.com/lib"
)

func main() { x.X(); lib.L(); _ = web.Index }
`,
		"app/internal/web/web.go":            "package web\n\nimport _ \"embed\"\n\n//go:embed static\nvar Index string\n",
		"app/internal/web/static/index.html": "<p>hi</p>",
		"app/internal/x/x.go":                "package x\n\nfunc X() {}\n",
		"app/internal/x/x_test.go":           "package x\n",
		"app/internal/x/notes.txt":           "not an input",
		"app/internal/unused/u.go":           "package unused\n",
		"app/nested/go.mod":                  "module example.com/app/nested\n",
		"app/nested/n.go":                    "package nested\n",
		"lib/go.mod":                         "module example.com/lib\n\ngo 1.26\n",
		"lib/lib.go":                         "package lib\n\nfunc L() {}\n",
		"lib/testdata/big.bin":               "x",
	})
	s, err := goSources(filepath.Join(root, "app"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for f := range s.files {
		got = append(got, f)
	}
	want := []string{
		"go.mod", "main.go", "internal/web/web.go", "internal/web/static/index.html", "internal/x/x.go",
		"replace:example.com/lib/go.mod", "replace:example.com/lib/lib.go",
	}
	less := func(a, b string) bool { return a < b }
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	if s.module != "example.com/app" || s.pkgRel != "." {
		t.Errorf("module %q, package %q", s.module, s.pkgRel)
	}
}

func TestTrimOutput(t *testing.T) {
	t.Parallel()
	if got := trimOutput([]byte("short")); got != "short" {
		t.Errorf("trimOutput(short) = %q", got)
	}
	long := strings.Repeat("a", OutputLimit) + strings.Repeat("b", OutputLimit)
	got := trimOutput([]byte(long))
	if len(got) > OutputLimit+100 || !strings.HasPrefix(got, "aaa") || !strings.HasSuffix(got, "bbb") || !strings.Contains(got, "bytes elided") {
		t.Errorf("trimOutput(long) = %d bytes, %q…", len(got), got[:20])
	}
}
