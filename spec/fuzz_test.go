package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to LoadFiles as one spec file. Loading
// must never panic, must always return a Config, and every diagnostic must
// carry a source range inside the file. The seed corpus in
// testdata/fuzz/FuzzLoad holds every valid and invalid test spec (kept in
// sync by TestFuzzCorpus).
//
//	go test ./spec -run '^$' -fuzz FuzzLoad -fuzztime 60s
func FuzzLoad(f *testing.F) {
	repo := fixtureRepo(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := LoadFiles(repo, map[string][]byte{"fuzz.hcl": src}, LoadOptions{})
		if cfg == nil {
			t.Fatal("nil Config")
		}
		for _, d := range diags {
			if d.Subject == nil {
				t.Fatalf("diagnostic %q (%s) has no range", d.Summary, d.Detail)
			}
			if d.Summary == "" || d.Detail == "" {
				t.Fatalf("diagnostic without summary or detail: %+v", d)
			}
		}
		if !diags.HasErrors() {
			// A spec that loads cleanly must also convert cleanly.
			for _, a := range cfg.Apps {
				if _, ok := cfg.DeployApp(a.Name); !ok {
					t.Fatalf("DeployApp(%q) failed", a.Name)
				}
			}
		}
		_ = Format(src)
		_ = renderDiags(cfg.Files, diags)
	})
}

// corpusEntry encodes src in Go's fuzz corpus file format for a single
// []byte argument.
func corpusEntry(src []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(src)) + ")\n")
}

// TestFuzzCorpus checks that the committed seed corpus of FuzzLoad holds
// every valid and invalid test spec, byte for byte; -update rewrites it.
func TestFuzzCorpus(t *testing.T) {
	var specs []string
	for _, pat := range []string{"testdata/invalid/*.hcl", "testdata/valid/*/*.hcl", "../examples/*/*.hcl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, m...)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzLoad")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range specs {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.NewReplacer("../", "", "/", "_").Replace(filepath.ToSlash(p)), ".hcl")
		seed := filepath.Join(dir, "seed_"+name)
		want := corpusEntry(src)
		if *update {
			if err := os.WriteFile(seed, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(seed)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is missing or stale for %s; run go test ./spec -run TestFuzzCorpus -update", seed, p)
		}
	}
}
