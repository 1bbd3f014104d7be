package layering

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Graph is an import graph: each package's direct (non-test) imports.
type Graph map[string][]string

// Load runs `go list -deps` on patterns in dir and returns the graph of
// every package they reach, standard library included.
func Load(dir string, patterns ...string) (Graph, error) {
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	g := Graph{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		g[f[0]] = f[1:]
	}
	return g, sc.Err()
}

// Path returns a shortest chain of imports from one package to another
// (from first, to last), or nil when from does not reach to.
func (g Graph) Path(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for q := p; q != ""; q = prev[q] {
				chain = append(chain, q)
			}
			for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
				chain[i], chain[j] = chain[j], chain[i]
			}
			return chain
		}
		for _, imp := range g[p] {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

// Reach returns every package from reaches (itself excluded), sorted.
func (g Graph) Reach(from string) []string {
	seen := map[string]bool{from: true}
	stack := []string{from}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, imp := range g[p] {
			if !seen[imp] {
				seen[imp] = true
				stack = append(stack, imp)
			}
		}
	}
	delete(seen, from)
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Importers returns the packages of g that import pkg directly, sorted.
func (g Graph) Importers(pkg string) []string {
	var out []string
	for p, imps := range g {
		for _, imp := range imps {
			if imp == pkg {
				out = append(out, p)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
