package testenv

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// Process is a child process started by StartProcess.
type Process struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Stderr collects the process's standard error.
	Stderr *Buffer
	// Done receives the result of cmd.Wait once, when the process exits.
	Done chan error
}

// StartProcess starts cmd (its Stdout and Stderr must be unset) and waits up
// to within for a line of its standard output that matches ready; it returns
// the process and the line's submatches. Other output lines are logged. The
// process is killed when the test ends unless it exited already, and its
// standard error is logged if the test failed.
func StartProcess(t testing.TB, cmd *exec.Cmd, ready *regexp.Regexp, within time.Duration) (*Process, []string) {
	t.Helper()
	p := &Process{Cmd: cmd, Stderr: &Buffer{}, Done: make(chan error, 1)}
	cmd.Stderr = p.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listens any more
			}
		}
		close(lines)
		io.Copy(io.Discard, stdout) //nolint:errcheck // drain until exit
	}()
	exited := make(chan struct{})
	go func() {
		p.Done <- cmd.Wait() // buffered: never blocks
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill() //nolint:errcheck // may exit meanwhile
			<-exited
		}
		if t.Failed() {
			s := p.Stderr.String()
			if len(s) > 4096 {
				s = "…" + s[len(s)-4096:]
			}
			t.Logf("%s stderr (last 4 KB):\n%s", cmd.Path, s)
		}
	})
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before it was ready:\n%s", cmd.Path, p.Stderr.String())
			}
			if m := ready.FindStringSubmatch(l); m != nil {
				return p, m
			}
			t.Logf("%s stdout: %s", cmd.Path, l)
		case <-timer.C:
			t.Fatalf("%s printed no line matching %q within %v:\n%s", cmd.Path, ready, within, p.Stderr.String())
		}
	}
}
