package gittest

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ServeDaemon also serves the server's repositories with `git daemon` on a
// 127.0.0.1 port (pushes allowed) until the test ends, and returns the
// repository's git:// URL. The daemon is a child process stopped by PID.
func (s *Server) ServeDaemon(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gittest: listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // git daemon needs the port on its command line
	dir, err := run(s.home, s.home, "--exec-path")
	if err != nil {
		t.Fatalf("gittest: %v", err)
	}
	// Run git-daemon itself (not "git daemon", which would leave it as an
	// orphaned child when stopped), so that its PID is the one stopped.
	cmd := exec.Command(filepath.Join(dir, "git-daemon"), "--reuseaddr", "--export-all", "--enable=receive-pack",
		"--base-path="+s.root, "--listen=127.0.0.1", "--port="+strconv.Itoa(port), s.root)
	cmd.Env = Env(s.home)
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("gittest: git daemon: %v", err)
	}
	t.Cleanup(func() {
		// Give per-connection children a moment to exit and be reaped
		// by the daemon, so none is orphaned by the kill.
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitListen(addr); err != nil {
		t.Fatalf("gittest: git daemon did not listen on %s: %v", addr, err)
	}
	return "git://" + addr + "/" + s.name
}

// waitListen waits up to 10 s for a TCP listener at addr (a daemon started
// as a child process) and returns the last dial error if none came.
func waitListen(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
