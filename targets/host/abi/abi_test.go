package abi_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// TestNoImports: the Go guest SDK (compiled for GOOS=wasip1) and the
// builder take their constants from this package, so it must stay free of
// imports; even the standard library may hold a package wasip1 lacks.
func TestNoImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range ast.Imports {
			t.Errorf("%s imports %s; package abi must import nothing", f, im.Path.Value)
		}
	}
}

// TestResultCodesMatchABIDoc: the result-code table of ABI.md (what guests
// in other languages are written against) lists exactly abi's error codes.
func TestResultCodesMatchABIDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]string{
		abi.ErrNotFound: "not found", abi.ErrDenied: "denied", abi.ErrIO: "I/O",
		abi.ErrTooLarge: "too large", abi.ErrInvalid: "invalid", abi.ErrUnsupported: "unsupported",
	}
	got := map[int32]string{}
	for line := range strings.Lines(string(doc)) {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		code, err := strconv.ParseInt(strings.TrimSpace(cells[1]), 10, 32)
		if err != nil || code >= 0 {
			continue
		}
		got[int32(code)] = strings.TrimSpace(cells[2])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ABI.md's result codes (-abi +ABI.md):\n%s", diff)
	}
}
