package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/open"
)

// targetOptions tune how targets are opened (see open.Options).
type targetOptions = open.Options

// spinSigning signs Spin images with the key that signs the artifacts;
// nil (unsigned) without a key.
func spinSigning(key *signer.PrivateKey, so signer.SignOptions) *open.SpinSigning {
	if key == nil {
		return nil
	}
	return &open.SpinSigning{Key: key, Options: so}
}

// credFlags are the flags that give commands their host credentials.
type credFlags struct {
	file           string // --credentials
	hostTokenFile  string // --host-token-file (by hand only)
	forceConflicts bool   // --force-conflicts (by hand only)
}

// register adds --credentials and, for commands run by hand, also
// --host-token-file.
func (f *credFlags) register(cmd *cobra.Command, byHand bool) {
	cmd.Flags().StringVar(&f.file, "credentials", os.Getenv("FERRY_CREDENTIALS"),
		"host credentials file: credential blocks that host targets name with credential = \"NAME\" (default $FERRY_CREDENTIALS)")
	if byHand {
		cmd.Flags().StringVar(&f.hostTokenFile, "host-token-file", "",
			"bearer token for host targets that name no credential (default: $FERRY_HOST_TOKEN)")
		cmd.Flags().BoolVar(&f.forceConflicts, "force-conflicts", false,
			"kubernetes targets: take over fields of same-named objects that another field manager made (server-side apply with force)")
	}
}

// apply fills o's credentials: the credentials file when given and, when
// byHand, the default token from --host-token-file or FERRY_HOST_TOKEN.
// Errors name files, never their contents.
func (f *credFlags) apply(o targetOptions, byHand bool) (targetOptions, error) {
	if f.file != "" {
		creds, diags := spec.LoadCredentials(f.file)
		if diags.HasErrors() {
			return o, fmt.Errorf("--credentials: %s", diags.Error())
		}
		o.Credentials = creds
	}
	if !byHand {
		return o, nil
	}
	o.ForceConflicts = f.forceConflicts
	if f.hostTokenFile != "" {
		b, err := os.ReadFile(expandHome(f.hostTokenFile))
		if err != nil {
			return o, fmt.Errorf("--host-token-file: %w", err)
		}
		o.DefaultToken = strings.TrimSpace(string(b))
	} else {
		o.DefaultToken = os.Getenv("FERRY_HOST_TOKEN")
	}
	return o, nil
}

// warnLogger logs warnings and errors to w, for commands that print their
// results on stdout.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openTargets opens every target of cfg (or of only, when given) that this
// version of ferry can drive (see open.Target). Targets of kinds not
// supported yet are returned in skipped, with a reason, and are not
// planned.
func openTargets(cfg *spec.Config, only []string, o targetOptions) (map[string]targets.Target, map[string]string, error) {
	out := map[string]targets.Target{}
	skipped := map[string]string{}
	for _, t := range cfg.Targets {
		if len(only) > 0 && !containsString(only, t.Name) {
			continue
		}
		opened, err := open.Target(t, o)
		var unsupported *open.UnsupportedError
		switch {
		case errors.As(err, &unsupported):
			skipped[t.Name] = unsupported.Error()
		case err != nil:
			return nil, nil, err
		default:
			out[t.Name] = opened.Target
		}
	}
	return out, skipped, nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printSkipped(w io.Writer, skipped map[string]string) {
	for _, name := range sortedKeys(skipped) {
		fmt.Fprintf(w, "Warning: %s.\n", skipped[name])
	}
}
