package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-wasm/ferry/sync/agent"
)

// tourLine is one `curl` line of the README's tour block.
type tourLine struct {
	// Line is the line as the README has it, comment included.
	Line string
	// Host is the Host header it sends ("hello-wat.localhost") and App the
	// app that host name belongs to ("hello-wat").
	Host, App string
	// Promise is the comment after the command: what the README says the
	// reader will see.
	Promise string
}

var (
	tourHostRE = regexp.MustCompile(`-H 'Host: (([a-z0-9-]+)\.localhost)'`)
	tourURLRE  = regexp.MustCompile(`http://127\.0\.0\.1:8080/\S*`)
)

// readTour returns the curl lines of the README's tour: the first sh block
// after "## A five-minute tour", the one that starts with make run.
func readTour(t *testing.T, root string) []tourLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(b), "\n## A five-minute tour\n")
	if !ok {
		t.Fatal(`README.md has no "## A five-minute tour" section`)
	}
	_, block, ok := strings.Cut(tour, "```sh\n")
	if !ok {
		t.Fatal("the README's tour has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	if !strings.HasPrefix(block, "make run\n") {
		t.Fatalf("the README's tour block does not start with make run:\n%s", block)
	}
	var lines []tourLine
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "curl ") {
			continue
		}
		m := tourHostRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("README tour line %q sends no Host header this test knows", l)
		}
		_, promise, _ := strings.Cut(l, "#")
		lines = append(lines, tourLine{Line: l, Host: m[1], App: m[2], Promise: strings.TrimSpace(promise)})
	}
	if len(lines) == 0 {
		t.Fatal("the README's tour block has no curl lines")
	}
	return lines
}

// tourCheck checks the bodies of successive runs of one tour line.
type tourCheck struct {
	// runs is how many times the line is run.
	runs int
	// want returns the body the README promises on run i (0-based).
	want func(i int) string
}

// tourChecks returns what each example app answers on "/", for the README
// line's promise. The expected bodies are read from the examples in root
// (so an edited example fails here, not in a reader's terminal), and each
// promise is checked against the README's comment, so a changed comment
// fails too. A README line for an app this table does not know fails.
func tourChecks(t *testing.T, root string, lines []tourLine) map[string]tourCheck {
	t.Helper()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	checks := map[string]tourCheck{}
	for _, l := range lines {
		var c tourCheck
		switch l.App {
		case "hello-wat":
			// The comment is the text itself.
			if !strings.Contains(read("examples/hello-wat/hello.wat"), `\n\n`+l.Promise+`\n"`) {
				t.Fatalf("README promises %q from hello-wat, but examples/hello-wat/hello.wat does not answer it", l.Promise)
			}
			c = tourCheck{1, func(int) string { return l.Promise + "\n" }}
		case "hello-go":
			if !strings.Contains(l.Promise, "http.Handler") || !strings.Contains(l.Promise, "reactor") {
				t.Fatalf("README's hello-go promise %q changed: update this check", l.Promise)
			}
			if src := read("examples/hello-go/main.go"); !strings.Contains(src, `"Hello, %s, from ferry!\n", name`) || !strings.Contains(src, `name = "world"`) {
				t.Fatal("examples/hello-go/main.go no longer answers \"Hello, world, from ferry!\": update this check")
			}
			c = tourCheck{1, func(int) string { return "Hello, world, from ferry!\n" }}
		case "kv-counter":
			if !strings.HasPrefix(l.Promise, "1, 2, 3,") {
				t.Fatalf("README's kv-counter promise %q changed: update this check", l.Promise)
			}
			c = tourCheck{3, func(i int) string { return fmt.Sprintf("%d\n", i+1) }}
		case "static-site":
			if !strings.Contains(l.Promise, "files declared in the spec") {
				t.Fatalf("README's static-site promise %q changed: update this check", l.Promise)
			}
			index := read("examples/static-site/static/index.html")
			c = tourCheck{1, func(int) string { return index }}
		default:
			t.Fatalf("README tour line %q is for app %q, which this test has no promise for: add one", l.Line, l.App)
		}
		checks[l.App] = c
	}
	for _, app := range []string{"hello-wat", "hello-go", "kv-counter", "static-site"} {
		if _, ok := checks[app]; !ok {
			t.Errorf("the README's tour has no curl line for example %s", app)
		}
	}
	return checks
}

// checkTourOwners checks, from the agent's status, that each tour line's
// host name belongs to its own app, that app serves healthy on the local
// host, and no app is the host's default: so no other app can have
// answered the line (the bodies of hello-wat and the fleet example's kiosk
// are the same bytes).
func checkTourOwners(t *testing.T, st agent.Status, lines []tourLine) {
	t.Helper()
	apps := map[string]agent.AppStatus{}
	for _, a := range st.Apps {
		apps[a.Name] = a
		if a.Default {
			t.Errorf("app %s declares no hosts: it answers every host name no other app claims", a.Name)
		}
	}
	for _, l := range lines {
		a, ok := apps[l.App]
		if !ok {
			t.Errorf("ferry status has no app %s (for %q)", l.App, l.Line)
			continue
		}
		if !slices.Contains(a.Hosts, l.Host) {
			t.Errorf("app %s has hosts %v, not %s", a.Name, a.Hosts, l.Host)
		}
		serving := false
		for _, tg := range a.Targets {
			serving = serving || (tg.Target == "local" && tg.Status == "serving" && tg.Healthy && tg.Digest == a.Desired)
		}
		if !serving || a.Error != "" {
			t.Errorf("app %s does not serve its desired version healthy on the local host: %+v", a.Name, a)
		}
	}
}

// tourURL returns the URL of a tour line with base in place of the
// README's http://127.0.0.1:8080.
func tourURL(l tourLine, base string) string {
	u := tourURLRE.FindString(l.Line)
	return strings.TrimSuffix(base, "/") + strings.TrimPrefix(u, "http://127.0.0.1:8080")
}
