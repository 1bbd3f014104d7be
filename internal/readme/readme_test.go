package readme

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// handRunFirstLine names the README block this test runs line by line.
const handRunFirstLine = "make build # bin/ferry and bin/ferry-host"

// knownBlocks lists every fenced sh block of README.md by its first line
// (see Block.FirstLine) and says which test runs it. A block missing here
// fails TestREADMEBlocksAreKnown, so a new block cannot go untested
// silently; an entry whose block is gone fails it too.
var knownBlocks = map[string]string{
	"make run # the main job on the embedded default: registry + ferry-host + agent serving examples/": "the two commands: `make test` is what CI runs; `make run` is `ferry up examples`, run by cmd/ferry's `make run` tests",
	"make run": "the `make run` tour and its curl lines: cmd/ferry's `make run` tests (TestUpServesExamplesAndCommits and the README newcomer test)",
	"bin/ferry status # what runs where, errors with file:line": "next to `make run`: cmd/ferry's `make run` tests",
	handRunFirstLine: "TestREADMEHandRunBlock, here",
}

func readREADME(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shBlocks returns README's sh blocks by first line.
func shBlocks(t *testing.T, md string) map[string]Block {
	t.Helper()
	out := map[string]Block{}
	for _, b := range Blocks(md) {
		if b.Lang != "sh" && b.Lang != "bash" {
			continue
		}
		if prev, dup := out[b.FirstLine()]; dup {
			t.Errorf("README.md:%d and :%d: two sh blocks start with %q; give one a different first line so the tests can tell them apart", prev.Line, b.Line, b.FirstLine())
		}
		out[b.FirstLine()] = b
	}
	return out
}

// TestREADMEBlocksAreKnown fails on a README sh block no test runs, and on
// a hand-run line this test has no check for.
func TestREADMEBlocksAreKnown(t *testing.T) {
	blocks := shBlocks(t, readREADME(t, testenv.RepoRoot(t)))
	for first, b := range blocks {
		if _, ok := knownBlocks[first]; !ok {
			t.Errorf("README.md:%d: no test runs the sh block that starts with %q; run it in a test and add it to knownBlocks in internal/readme/readme_test.go", b.Line, first)
		}
	}
	for first := range knownBlocks {
		if _, ok := blocks[first]; !ok {
			t.Errorf("knownBlocks names a README block that is gone (or whose first line changed): %q", first)
		}
	}
	b, ok := blocks[handRunFirstLine]
	if !ok {
		t.Fatalf("README.md has no hand-run block starting with %q", handRunFirstLine)
	}
	used := map[int]bool{}
	for _, c := range Commands(b) {
		if _, err := checkFor(c); err != nil {
			t.Errorf("README.md:%d: %v", c.Line, err)
		}
		for i, ch := range handRunChecks {
			if strings.HasPrefix(c.Cmd, ch.prefix) {
				used[i] = true
			}
		}
	}
	for i, ch := range handRunChecks {
		if !used[i] {
			t.Errorf("handRunChecks has a check for %q, but no README line starts so", ch.prefix)
		}
	}
}

// result is what one README line did.
type result struct {
	cmd  Command
	code int
	out  string // standard output and error together
}

// lineCheck checks one kind of README line after it ran.
type lineCheck struct {
	// prefix selects the lines (Command.Cmd starts with it).
	prefix string
	// timeout bounds the line (default 3 minutes).
	timeout time.Duration
	// background marks a line ending in "&": its process must be running.
	background bool
	// check says what is wrong with the outcome, beyond the exit code.
	check func(sh *shell, r result) error
}

var (
	refRE   = regexp.MustCompile(`^127\.0\.0\.1:5000/examples/hello-wat@(sha256:[0-9a-f]{64})$`)
	buildRE = regexp.MustCompile(`(?m)^hello-go/web\s+sha256:[0-9a-f]{64}\s+\d+ bytes\s+(built|cached) in `)
)

func contains(subs ...string) func(*shell, result) error {
	return func(_ *shell, r result) error {
		for _, s := range subs {
			if !strings.Contains(r.out, s) {
				return fmt.Errorf("output lacks %q", s)
			}
		}
		return nil
	}
}

func files(paths ...string) func(*shell, result) error {
	return func(sh *shell, _ result) error {
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(sh.dir, p)); err != nil {
				return fmt.Errorf("it should have written %s: %v", p, err)
			}
		}
		return nil
	}
}

func all(checks ...func(*shell, result) error) func(*shell, result) error {
	return func(sh *shell, r result) error {
		for _, c := range checks {
			if err := c(sh, r); err != nil {
				return err
			}
		}
		return nil
	}
}

// agentSuspended asks the agent's status API whether hello-wat is suspended.
func agentSuspended(want bool) func(*shell, result) error {
	return func(sh *shell, _ result) error {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:8090/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+sh.eval("$FERRY_AGENT_TOKEN"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var st struct {
			Apps []struct {
				Name      string `json:"name"`
				Suspended bool   `json:"suspended"`
			} `json:"apps"`
		}
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("agent status %s: %v: %s", resp.Status, err, body)
		}
		for _, a := range st.Apps {
			if a.Name == "hello-wat" {
				if a.Suspended != want {
					return fmt.Errorf("agent status says hello-wat suspended=%v, want %v", a.Suspended, want)
				}
				return nil
			}
		}
		return fmt.Errorf("agent status has no app hello-wat: %s", body)
	}
}

// handRunChecks say, for each line of the hand-run block, what the README
// claims it does. Every line must match exactly one; the exit code is
// checked for every line (0, or what an "exit N:" comment states).
var handRunChecks = []lineCheck{
	{prefix: "make build", timeout: 20 * time.Minute, check: files("bin/ferry", "bin/ferry-host")},
	{prefix: "bin/ferry init myapp", check: files("myapp/ferry.hcl")},
	{prefix: "bin/ferry validate myapp", check: contains("myapp is valid")},
	{prefix: "bin/ferry fmt -check -r .", check: func(_ *shell, r result) error {
		if r.out != "" {
			return fmt.Errorf("want no output from a clean tree")
		}
		return nil
	}},
	{prefix: "bin/ferry build examples/hello-go", timeout: 10 * time.Minute, check: func(_ *shell, r result) error {
		if !buildRE.MatchString(r.out) {
			return fmt.Errorf("output has no line matching %s", buildRE)
		}
		return nil
	}},
	{prefix: "source <(bin/ferry completion bash)", check: func(sh *shell, _ result) error {
		if got := sh.eval("$(complete -p ferry 2>&1)"); !strings.Contains(got, "__start_ferry") {
			return fmt.Errorf("no completion for ferry in the shell afterwards: complete -p ferry says %q", got)
		}
		return nil
	}},
	{prefix: "export FERRY_PASSWORD=", check: func(sh *shell, _ result) error {
		if sh.eval("$FERRY_PASSWORD") == "" || sh.eval("$FERRY_HOST_TOKEN") == "" {
			return fmt.Errorf("FERRY_PASSWORD or FERRY_HOST_TOKEN is not set afterwards")
		}
		return nil
	}},
	{prefix: "bin/ferry keygen", check: all(contains("Private key written to cosign.key", "Public key written to cosign.pub"), files("cosign.key", "cosign.pub"))},
	{prefix: "bin/ferry registry serve", background: true},
	{prefix: "bin/ferry-host ", background: true},
	{prefix: "curl -s --retry", timeout: time.Minute, check: func(sh *shell, _ result) error {
		resp, err := http.Get("http://127.0.0.1:5000/v2/")
		if err != nil {
			return fmt.Errorf("the registry does not answer after the wait: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("registry /v2/: %s", resp.Status)
		}
		return sh.running()
	}},
	{prefix: "REF=$(bin/ferry push -q", timeout: 5 * time.Minute, check: func(sh *shell, _ result) error {
		if ref := sh.eval("$REF"); !refRE.MatchString(ref) {
			return fmt.Errorf("REF is %q, want a match for %s", ref, refRE)
		}
		return nil
	}},
	{prefix: `bin/ferry sign --key cosign.key "$REF"`, check: func(sh *shell, r result) error {
		d := refRE.FindStringSubmatch(sh.eval("$REF"))[1]
		return contains("Signed "+d, ".sig")(sh, r)
	}},
	{prefix: `bin/ferry verify --key cosign.pub "$REF"`, check: func(sh *shell, r result) error {
		return contains("Verified "+sh.eval("$REF"), "1 verified of 1 found")(sh, r)
	}},
	{prefix: "COSIGN=$(scripts/testtool.sh cosign-v2.6.5)", timeout: 30 * time.Minute, check: func(sh *shell, _ result) error {
		p := sh.eval("$COSIGN")
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return fmt.Errorf("COSIGN=%q is not an executable: %v", p, err)
		}
		return nil
	}},
	{prefix: `"$COSIGN" verify --key cosign.pub`, timeout: 2 * time.Minute, check: contains("The signatures were verified against the specified public key")},
	{prefix: `bin/ferry inspect "$REF"`, check: func(sh *shell, r result) error {
		return contains(sh.eval("$REF"), "application/wasm", ".sig")(sh, r)
	}},
	{prefix: `R="--repository`, check: func(sh *shell, _ result) error {
		if !strings.Contains(sh.eval("$R"), "--key cosign.key") {
			return fmt.Errorf("R is %q", sh.eval("$R"))
		}
		return nil
	}},
	{prefix: "bin/ferry plan $R -detailed-exitcode", timeout: 5 * time.Minute, check: contains("+ create hello-wat", "1 to create")},
	{prefix: "bin/ferry plan $R -out hello.plan", timeout: 5 * time.Minute, check: all(contains("Saved the plan to hello.plan"), files("hello.plan"))},
	{prefix: "bin/ferry apply hello.plan", timeout: 5 * time.Minute, check: contains("Apply complete: 1 applied, 0 failed")},
	{prefix: "curl -s -H 'Host: hello-wat.localhost' http://127.0.0.1:8080/", check: func(_ *shell, r result) error {
		// A curl line's comment is the body it prints.
		if got := strings.TrimSpace(r.out); got != r.cmd.Comment {
			return fmt.Errorf("body %q, the README says %q", got, r.cmd.Comment)
		}
		return nil
	}},
	{prefix: "bin/ferry destroy -auto-approve", timeout: 5 * time.Minute, check: contains("- delete hello-wat", "Apply complete: 1 applied, 0 failed")},
	{prefix: "export FERRY_AGENT_TOKEN=", check: func(sh *shell, _ result) error {
		if sh.eval("$FERRY_AGENT_TOKEN") == "" {
			return fmt.Errorf("FERRY_AGENT_TOKEN is not set afterwards")
		}
		return nil
	}},
	{prefix: "bin/ferry agent ", background: true},
	{prefix: "until bin/ferry suspend hello-wat", timeout: 5 * time.Minute, check: all(contains("Suspended hello-wat."), agentSuspended(true))},
	{prefix: "bin/ferry resume hello-wat", check: all(contains("Resumed hello-wat."), agentSuspended(false))},
	{prefix: "kill $(jobs -p)", check: func(sh *shell, _ result) error { return sh.waitAll(time.Minute) }},
}

// checkFor returns the one check for c.
func checkFor(c Command) (lineCheck, error) {
	var found []lineCheck
	for _, ch := range handRunChecks {
		if strings.HasPrefix(c.Cmd, ch.prefix) {
			found = append(found, ch)
		}
	}
	switch len(found) {
	case 1:
		if found[0].background != strings.HasSuffix(c.Cmd, "&") {
			return lineCheck{}, fmt.Errorf("%q: background is %v in handRunChecks, but the line does not agree", c.Cmd, found[0].background)
		}
		return found[0], nil
	case 0:
		return lineCheck{}, fmt.Errorf("no check in handRunChecks (internal/readme/readme_test.go) for %q: say there what the line does", c.Cmd)
	default:
		return lineCheck{}, fmt.Errorf("%d checks in handRunChecks match %q", len(found), c.Cmd)
	}
}

// TestREADMEHandRunBlock runs the README's hand-run block line by line in
// one bash, in a fresh copy of the repository (its tracked and new files,
// committed on branch main), with the ports the README names. Each line
// must end with the exit code its comment states (0 otherwise) and pass its
// check in handRunChecks; the background processes it starts must run until
// its own last line stops them; and afterwards `git status` must be clean:
// the block leaves nothing that is not git-ignored.
//
// The shell has a private HOME, XDG dirs and TMPDIR (the Go caches are the
// machine's), and its HTTP(S) proxy is a dead loopback port, so the real
// cosign's trust-root fetch fails at once instead of leaving the machine;
// loopback is never proxied. cosign is built first, outside that shell (it
// needs the module proxy), so the block's testtool.sh line finds it cached.
func TestREADMEHandRunBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make build and the README's whole hand-run block")
	}
	root := testenv.RepoRoot(t)
	testenv.Tool(t, "cosign-v2.6.5")
	testenv.FixedPorts(t, 15*time.Minute, "127.0.0.1:5000", "127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8090")

	dir := copyRepo(t, root)
	block, ok := shBlocks(t, readREADME(t, dir))[handRunFirstLine]
	if !ok {
		t.Fatalf("README.md has no block starting with %q", handRunFirstLine)
	}
	sh := startShell(t, dir)
	for _, c := range Commands(block) {
		ch, err := checkFor(c)
		if err != nil {
			t.Fatalf("README.md:%d: %v", c.Line, err)
		}
		timeout := ch.timeout
		if timeout == 0 {
			timeout = 3 * time.Minute
		}
		start := time.Now()
		r := sh.run(c, timeout)
		t.Logf("README.md:%d $ %s\n(exit %d after %v)\n%s", c.Line, c.Text, r.code, time.Since(start).Round(time.Millisecond), tail(r.out, 2048))
		if want := c.ExitCode(); r.code != want {
			t.Fatalf("README.md:%d: %q exited %d, the README says %d:\n%s", c.Line, c.Cmd, r.code, want, tail(r.out, 4096))
		}
		if ch.background && sh.lastPID == 0 {
			t.Fatalf("README.md:%d: %q started no background process", c.Line, c.Cmd)
		}
		if ch.check != nil {
			if err := ch.check(sh, r); err != nil {
				t.Fatalf("README.md:%d: %q: %v\n%s", c.Line, c.Cmd, err, tail(r.out, 4096))
			}
		}
	}
	if len(sh.pids) != 0 {
		t.Errorf("README block left processes running: %v", sh.pids)
	}
	status := gitOut(t, dir, "status", "--porcelain")
	if status != "" {
		t.Errorf("the README block left files git does not ignore:\n%s", status)
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// gitOut runs git with a private configuration in dir.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(),
		"GIT_AUTHOR_NAME=ferry test", "GIT_AUTHOR_EMAIL=test@localhost",
		"GIT_COMMITTER_NAME=ferry test", "GIT_COMMITTER_EMAIL=test@localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// copyRepo copies the repository's tracked and new (not ignored) files, as
// they are in the working tree, to a new directory and commits them there
// on branch main: a fresh clone of what is being tested, uncommitted edits
// included.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ferry")
	list := gitOut(t, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, rel := range strings.Split(list, "\x00") {
		if rel == "" {
			continue
		}
		src := filepath.Join(root, rel)
		st, err := os.Lstat(src)
		if err != nil || st.IsDir() {
			continue // deleted in the working tree, or a submodule
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	gitOut(t, dir, "init", "-q", "-b", "main")
	gitOut(t, dir, "add", "-A")
	gitOut(t, dir, "commit", "-q", "-m", "the tree under test")
	return dir
}

// shell is one bash process that runs README lines one at a time, so that
// variables, exports, sourced functions and background jobs carry over from
// line to line as they do in a terminal. After each line it reports the
// exit code and $! on file descriptor 3.
type shell struct {
	t       *testing.T
	dir     string
	outDir  string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	status  chan string
	stderr  *testenv.Buffer
	n       int
	bang    int            // $! after the previous line
	lastPID int            // the background process the last line started; 0 if none
	pids    []int          // background processes started by the block, still running
	outs    map[int]string // pid → file with its output
}

func startShell(t *testing.T, dir string) *shell {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{"cache", "config", "state", "tmp"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goenv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	dead := "http://" + testenv.FreeAddr(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"TMPDIR=" + filepath.Join(home, "tmp"),
		"GOCACHE=" + goenv("GOCACHE"),
		"GOMODCACHE=" + goenv("GOMODCACHE"),
		"GOPATH=" + goenv("GOPATH"),
		"GOTOOLCHAIN=local",
		"FERRY_TEST_CACHE=" + testenv.CacheDir(t),
		"TUF_ROOT=" + filepath.Join(home, "tuf"),
		"TUF_MIRROR=" + dead,
		"HTTPS_PROXY=" + dead,
		"HTTP_PROXY=" + dead,
		"NO_PROXY=127.0.0.1,localhost",
		"LANG=C.UTF-8",
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sh := &shell{t: t, dir: dir, outDir: t.TempDir(), status: make(chan string, 4), stderr: &testenv.Buffer{}, outs: map[int]string{}}
	sh.cmd = exec.Command("bash", "--noprofile", "--norc")
	sh.cmd.Dir = dir
	sh.cmd.Env = env
	sh.cmd.Stdout = sh.stderr
	sh.cmd.Stderr = sh.stderr
	sh.cmd.ExtraFiles = []*os.File{statusW} // fd 3
	if sh.stdin, err = sh.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sh.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	go func() {
		sc := bufio.NewScanner(statusR)
		for sc.Scan() {
			sh.status <- sc.Text()
		}
		close(sh.status)
		statusR.Close()
	}()
	exited := make(chan struct{})
	go func() { sh.cmd.Wait(); close(exited) }() //nolint:errcheck // the status pipe tells
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			// The test stopped early: end what the block started, by PID —
			// every descendant of this bash, then bash itself.
			for _, pid := range descendants(sh.cmd.Process.Pid) {
				syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // may have exited
			}
			sh.cmd.Process.Kill() //nolint:errcheck // may have exited
			<-exited
		}
		if t.Failed() {
			t.Logf("bash's own output:\n%s", tail(sh.stderr.String(), 4096))
		}
	})
	sh.write("set -o pipefail\n")
	return sh
}

func (sh *shell) write(s string) {
	sh.t.Helper()
	if _, err := io.WriteString(sh.stdin, s); err != nil {
		sh.t.Fatalf("writing to bash: %v\n%s", err, sh.stderr.String())
	}
}

// read returns the next status line, failing the test after timeout or when
// bash exits.
func (sh *shell) read(what string, timeout time.Duration) string {
	sh.t.Helper()
	select {
	case l, ok := <-sh.status:
		if !ok {
			sh.t.Fatalf("bash exited while running %s:\n%s", what, tail(sh.stderr.String(), 4096))
		}
		return l
	case <-time.After(timeout):
		sh.t.Fatalf("%s did not finish within %v", what, timeout)
	}
	return ""
}

// run runs one README line as typed, its output collected in a file.
func (sh *shell) run(c Command, timeout time.Duration) result {
	sh.t.Helper()
	sh.n++
	out := filepath.Join(sh.outDir, strconv.Itoa(sh.n)+".out")
	// The group keeps assignments, exports and jobs in this shell; fd 3 is
	// closed inside so background processes do not hold the status pipe.
	sh.write(fmt.Sprintf("{ %s\n} >%q 2>&1 </dev/null 3>&-\nprintf 'rc %%s %%s\\n' \"$?\" \"$!\" >&3\n", c.Text, out))
	l := sh.read(fmt.Sprintf("README.md:%d (%s)", c.Line, c.Cmd), timeout)
	f := strings.Fields(l)
	if len(f) < 2 || f[0] != "rc" {
		sh.t.Fatalf("unexpected status line from bash: %q", l)
	}
	code, _ := strconv.Atoi(f[1])
	sh.lastPID = 0
	if len(f) > 2 {
		// Only a line ending in "&" starts a job; $! also changes for a
		// process substitution such as <(...).
		if pid, _ := strconv.Atoi(f[2]); pid != 0 && pid != sh.bang && strings.HasSuffix(c.Cmd, "&") {
			sh.bang, sh.lastPID = pid, pid
			sh.pids = append(sh.pids, pid)
			sh.outs[pid] = out
		}
	}
	b, _ := os.ReadFile(out)
	return result{cmd: c, code: code, out: string(b)}
}

// eval returns the value of a shell word (such as "$REF") in the shell.
func (sh *shell) eval(word string) string {
	sh.t.Helper()
	sh.write(fmt.Sprintf("printf 'ev %%s\\n' \"%s\" >&3\n", word))
	l := sh.read("eval "+word, 10*time.Second)
	v, ok := strings.CutPrefix(l, "ev ")
	if !ok && l != "ev" {
		sh.t.Fatalf("unexpected status line from bash: %q", l)
	}
	return v
}

// running reports an error unless every background process is alive.
func (sh *shell) running() error {
	for _, pid := range sh.pids {
		if !childOf(pid, sh.cmd.Process.Pid) {
			b, _ := os.ReadFile(sh.outs[pid])
			return fmt.Errorf("background process %d has exited; its output:\n%s", pid, tail(string(b), 4096))
		}
	}
	return nil
}

// waitAll waits (with bash's wait) until the block's background processes
// have exited.
func (sh *shell) waitAll(within time.Duration) error {
	sh.write("wait\nprintf 'rc %s\\n' \"$?\" >&3\n")
	sh.read("wait for the background processes", within)
	for _, pid := range sh.pids {
		if childOf(pid, sh.cmd.Process.Pid) {
			return fmt.Errorf("background process %d still runs", pid)
		}
	}
	sh.pids = nil
	return nil
}

// childOf reports whether pid is a live child process of parent.
func childOf(pid, parent int) bool {
	return ppid(pid) == parent
}

// ppid returns the parent of pid from /proc, or -1 (gone, or a zombie).
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || f[0] == "Z" {
		return -1
	}
	p, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return p
}

// descendants returns every process below pid, deepest first.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(p); pp > 0 {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			walk(c)
			out = append(out, c)
		}
	}
	walk(pid)
	return out
}
