package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Cosign runs a real cosign CLI (built by Tool) offline: HOME and the TUF
// cache are private temp dirs, the TUF mirror is a closed loopback port (so
// cosign's trust-root fetch fails at once instead of going to the
// internet), and any other outbound HTTP goes to a dead loopback proxy.
// Loopback registries bypass the proxy.
type Cosign struct {
	t testing.TB
	// Bin is the cosign binary; Home its private HOME.
	Bin, Home string
	password  string
	dead      string // http://127.0.0.1:PORT with nothing listening
}

// NewCosign returns a runner for cosign VERSION ("v2.6.5", "v3.1.3") whose
// key password (COSIGN_PASSWORD) is password.
func NewCosign(t testing.TB, version, password string) *Cosign {
	t.Helper()
	return &Cosign{
		t:        t,
		Bin:      Tool(t, "cosign-"+version),
		Home:     t.TempDir(),
		password: password,
		dead:     "http://" + FreeAddr(t),
	}
}

// Run runs cosign in dir and returns its combined output. It fails the test
// if cosign fails and wantErr is false, or succeeds and wantErr is true.
func (c *Cosign) Run(dir string, wantErr bool, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.Bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"HOME=" + c.Home,
		"PATH=" + os.Getenv("PATH"),
		"COSIGN_PASSWORD=" + c.password,
		"TUF_ROOT=" + filepath.Join(c.Home, "tuf"),
		"TUF_MIRROR=" + c.dead,
		"HTTPS_PROXY=" + c.dead,
		"HTTP_PROXY=" + c.dead,
		"NO_PROXY=127.0.0.1,localhost",
		"COSIGN_EXPERIMENTAL=0",
	}
	out, err := cmd.CombinedOutput()
	if err != nil && !wantErr {
		c.t.Fatalf("%s %s: %v\n%s", filepath.Base(c.Bin), strings.Join(args, " "), err, out)
	}
	if err == nil && wantErr {
		c.t.Fatalf("%s %s: succeeded, want failure\n%s", filepath.Base(c.Bin), strings.Join(args, " "), out)
	}
	return string(out)
}
