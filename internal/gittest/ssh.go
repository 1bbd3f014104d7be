package gittest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/testenv"
)

// SSH is an OpenSSH server (the real sshd) serving a Server's repositories
// on a 127.0.0.1 port, logging in one user with one key.
type SSH struct {
	// URL is the repository's ssh:// URL (user, loopback address, absolute
	// path).
	URL string
	// KeyFile is the client's private key (ed25519, no passphrase).
	KeyFile string
	// KnownHostsFile lists the server's host key for its address.
	KnownHostsFile string
	// User is the login name (the user running the test).
	User string
}

// sshdPath is where Debian's openssh-server installs sshd (scripts/testdeps.sh
// installs it).
const sshdPath = "/usr/sbin/sshd"

// ServeSSH also serves the server's repositories with OpenSSH's sshd on a
// 127.0.0.1 port until the test ends: public-key login of the current user
// with a fresh key, git-upload-pack and git-receive-pack run by the user's
// shell as with any git host over ssh. sshd is a child process stopped by
// PID.
func (s *Server) ServeSSH(t testing.TB) *SSH {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Fatalf("gittest: %s is missing (scripts/testdeps.sh installs openssh-server): %v", sshdPath, err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("gittest: current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd started by root insists on its privilege separation
		// directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("gittest: %v", err)
		}
	}
	dir := t.TempDir()
	hostKey, clientKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "client_key")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gittest", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("gittest: ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, pub, 0o600); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gittest: listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // sshd needs the port in its configuration

	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join([]string{
		"ListenAddress 127.0.0.1:" + strconv.Itoa(port),
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + auth,
		"AllowUsers " + u.Username,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PrintMotd no",
		"LogLevel ERROR",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// -D: stay in the foreground (its PID is the one stopped); -e: log to
	// stderr.
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfg)
	var logs testenv.Buffer
	cmd.Stderr = &logs
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("gittest: sshd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() && logs.String() != "" {
			t.Logf("sshd log:\n%s", logs.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitListen(addr); err != nil {
		t.Fatalf("gittest: sshd did not listen on %s: %v\n%s", addr, err, logs.String())
	}

	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hostPub))
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", port, f[0], f[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	return &SSH{
		URL:            fmt.Sprintf("ssh://%s@%s%s", u.Username, addr, s.Path()),
		KeyFile:        clientKey,
		KnownHostsFile: known,
		User:           u.Username,
	}
}
