package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/term"
)

// diagWriter renders HCL diagnostics compiler-style: a first line
// "file:line:col: error: summary" that editors and CI logs can jump to, then
// the offending source line with a marker under the range, then the detail.
type diagWriter struct {
	w     io.Writer
	files map[string]*hcl.File
	color bool
}

func newDiagWriter(w io.Writer, files map[string]*hcl.File) *diagWriter {
	color := false
	if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		color = true
	}
	return &diagWriter{w: w, files: files, color: color}
}

func (d *diagWriter) paint(code, s string) string {
	if !d.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (d *diagWriter) write(diags hcl.Diagnostics) {
	for _, diag := range diags {
		sev := d.paint("1;31", "error")
		if diag.Severity == hcl.DiagWarning {
			sev = d.paint("1;33", "warning")
		}
		loc := ""
		if r := diag.Subject; r != nil {
			loc = fmt.Sprintf("%s:%d:%d: ", r.Filename, r.Start.Line, r.Start.Column)
		}
		fmt.Fprintf(d.w, "%s%s: %s\n", loc, sev, d.paint("1", diag.Summary))
		if r := diag.Subject; r != nil {
			d.snippet(*r)
		}
		if diag.Detail != "" {
			for _, line := range strings.Split(diag.Detail, "\n") {
				fmt.Fprintf(d.w, "  %s\n", line)
			}
		}
		fmt.Fprintln(d.w)
	}
}

// snippet prints the first line of r with a caret marker under it.
func (d *diagWriter) snippet(r hcl.Range) {
	f := d.files[r.Filename]
	if f == nil || f.Bytes == nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(f.Bytes))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if n != r.Start.Line {
			continue
		}
		line := strings.ReplaceAll(sc.Text(), "\t", " ")
		start := r.Start.Column - 1
		if start < 0 || start > len(line) {
			start = len(line)
		}
		end := len(line)
		if r.End.Line == r.Start.Line && r.End.Column-1 > start && r.End.Column-1 <= len(line) {
			end = r.End.Column - 1
		}
		width := end - start
		if width < 1 {
			width = 1
		}
		gutter := fmt.Sprintf("%5d | ", n)
		fmt.Fprintf(d.w, "%s%s\n", gutter, line)
		fmt.Fprintf(d.w, "%s%s%s\n", strings.Repeat(" ", len(gutter)-2)+"| ", strings.Repeat(" ", start), d.paint("1;31", strings.Repeat("^", width)))
		return
	}
}
