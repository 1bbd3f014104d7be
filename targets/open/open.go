package open

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/registry"
	"github.com/ferry-wasm/ferry/signer"
	"github.com/ferry-wasm/ferry/spec"
	"github.com/ferry-wasm/ferry/targets"
	"github.com/ferry-wasm/ferry/targets/host/driver"
	kdriver "github.com/ferry-wasm/ferry/targets/kubernetes/driver"
	"github.com/ferry-wasm/ferry/targets/kubernetes/kubeconfig"
	"github.com/ferry-wasm/ferry/targets/kubernetes/render"
)

// ErrUnsupported is wrapped by the error of a target whose kind this
// version of ferry cannot deploy to yet. Retrying does not help.
var ErrUnsupported = errors.New("target kind not supported yet")

// UnsupportedError is the error of a target whose kind this version of
// ferry cannot deploy to yet. Its message is the warning commands print:
// the target is skipped, not planned.
type UnsupportedError struct {
	// Name is the target's name.
	Name string
	// Type is its kind.
	Type spec.TargetType
	// Mode is the kubernetes mode that is not supported; empty for a
	// kind not supported at all.
	Mode string
	// Why, when set, replaces the "cannot deploy to yet" reason: the kind
	// is supported, but not by this caller.
	Why string
}

func (e *UnsupportedError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("target %s is of type %q and was not planned: %s", e.Name, e.Type, e.Why)
	}
	if e.Mode != "" {
		return fmt.Sprintf("target %s is of type %q in mode %q, which this version of ferry cannot deploy to yet; it was not planned", e.Name, e.Type, e.Mode)
	}
	return fmt.Sprintf("target %s is of type %q, which this version of ferry cannot deploy to yet; it was not planned", e.Name, e.Type)
}

func kubeMode(t *spec.Target) string {
	if t.Kubernetes == nil {
		return ""
	}
	return t.Kubernetes.Mode
}

// Unwrap returns ErrUnsupported.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// Options tune how targets are opened. The zero value opens targets
// without credentials, with the drivers' defaults.
type Options struct {
	// LockTTL is the lease of a host's apply lock (zero: the host's
	// default, 30 s); a holder that dies keeps the lock that long.
	LockTTL time.Duration
	// Logger receives the targets' warnings (a lost apply lock). Nil
	// discards them.
	Logger *slog.Logger
	// Credentials are the operator's host credentials; a host target that
	// names one (credential = "NAME") gets its token and TLS files, for the
	// endpoints the credential allows only. Nil: no credentials.
	Credentials spec.Credentials
	// DefaultToken is sent to host targets that name no credential. Only
	// commands run by hand set it (--host-token-file, FERRY_HOST_TOKEN);
	// the agent never does, so a commit cannot send an agent secret to an
	// endpoint of its choosing. Empty: no token.
	DefaultToken string
	// ForceConflicts lets kubernetes targets take over fields of objects
	// that another field manager made (server-side apply with force).
	// False: such a conflict fails the app's deploy, naming the manager
	// and the field. Objects ferry already manages are always repaired.
	ForceConflicts bool
	// RolloutWait bounds how long a kubernetes target's Put waits for a
	// rollout before it reports it progressing (zero: the app's whole
	// deploy timeout).
	RolloutWait time.Duration
	// Fleets opens fleet targets: the agent's (and ferry up's) fleet hub,
	// which runs their rollouts and serves their devices. Nil: fleet
	// targets are not supported by this caller (ferry plan and apply run
	// by hand reach no device server) and open as *UnsupportedError.
	Fleets Fleets
	// Registry pushes the Spin image of each app of a kubernetes target
	// in mode "spinapp" to the app's repository. Nil: a client with the
	// FERRY_REGISTRY_* login (registry.EnvCredentials), the Docker
	// config's logins and the registry package's defaults.
	Registry *registry.Client
	// SpinSign, when set, signs the Spin image of each app of a kubernetes
	// target in mode "spinapp" once it is pushed, with the key and options
	// that sign ferry's artifacts (cosign's .sig scheme, so `cosign verify`
	// accepts it). Nil leaves Spin images unsigned.
	SpinSign *SpinSigning
	// Verify, when set, makes kubernetes targets in mode host verify each
	// artifact against their trust keys before applying it (and report in
	// the plan an artifact their pods would refuse, saying why), reaching
	// the registry this way. Nil leaves verification to the pods.
	Verify *signer.RegistryOptions
}

// SpinSigning is how Spin images are signed (Options.SpinSign).
type SpinSigning struct {
	// Key signs. Required.
	Key *signer.PrivateKey
	// Options reach the registry (and annotate the signature).
	Options signer.SignOptions
}

// Fleets opens the target of a spec fleet target: the controller of its
// rollouts (see targets/fleet/hub).
type Fleets interface {
	// FleetTarget returns the target of fleet target name with policy f.
	FleetTarget(name string, f *spec.FleetTarget) (targets.Target, error)
}

// Opened is an opened target.
type Opened struct {
	// Target is the driver. It may implement the optional interfaces of
	// package targets (a host: RollBacker, Locker, LockInspector,
	// OwnerRecorder, SecretHasher).
	Target targets.Target
	// Key identifies the connection: the kind, the endpoints in spec
	// order and the name of the credential (never a secret, nor a token's
	// source). Two spec targets with equal Keys reach the same place the
	// same way, so a caller may keep an opened target while its Key is
	// unchanged and must reopen it when the Key moves.
	Key string
}

// Target opens spec target t. Errors name the target and the credential,
// never a secret; a kind not supported yet is an *UnsupportedError. Target
// does not contact the target: a wrong endpoint shows on first use.
func Target(t *spec.Target, o Options) (Opened, error) {
	switch t.Type {
	case spec.TargetHost:
		tg, err := hostTarget(t, o)
		if err != nil {
			return Opened{}, fmt.Errorf("target %s: %w", t.Name, err)
		}
		return Opened{Target: tg, Key: Key(t)}, nil
	case spec.TargetKubernetes:
		if t.Kubernetes == nil || (t.Kubernetes.Mode != spec.KubeModeHost && t.Kubernetes.Mode != spec.KubeModeSpinApp && t.Kubernetes.Mode != "") {
			return Opened{}, &UnsupportedError{Name: t.Name, Type: t.Type, Mode: kubeMode(t)}
		}
		tg, err := kubeTarget(t, o)
		if err != nil {
			return Opened{}, fmt.Errorf("target %s: %w", t.Name, err)
		}
		return Opened{Target: tg, Key: Key(t)}, nil
	case spec.TargetFleet:
		if o.Fleets == nil || t.Fleet == nil {
			return Opened{}, &UnsupportedError{Name: t.Name, Type: t.Type, Why: "fleet targets are rolled out by the agent (ferry agent, ferry up), which serves their devices"}
		}
		tg, err := o.Fleets.FleetTarget(t.Name, t.Fleet)
		if err != nil {
			return Opened{}, fmt.Errorf("target %s: %w", t.Name, err)
		}
		return Opened{Target: tg, Key: Key(t)}, nil
	default:
		return Opened{}, &UnsupportedError{Name: t.Name, Type: t.Type}
	}
}

// Key returns the connection identity of t that Target puts in
// Opened.Key: the kind and every field of the target's block that shapes
// its driver (a host's endpoints and credential name; a cluster's
// kubeconfig path, context, namespace and mode). It never holds a secret.
func Key(t *spec.Target) string {
	k := string(t.Type)
	if h := t.Host; h != nil {
		k += " endpoints=" + strings.Join(h.Endpoints, ",") + " credential=" + h.Credential
	}
	if c := t.Kubernetes; c != nil {
		k += " kubeconfig=" + c.Kubeconfig + " context=" + c.Context + " namespace=" + c.Namespace + " mode=" + c.Mode
		// The workload settings shape the driver's objects: a change
		// reopens it.
		b, _ := json.Marshal(struct {
			Image        string                `json:"image"`
			Replicas     int32                 `json:"replicas"`
			Resources    *spec.KubeResources   `json:"resources"`
			NodeSelector map[string]string     `json:"node_selector"`
			Tolerations  []spec.KubeToleration `json:"tolerations"`
			PullSecrets  []string              `json:"image_pull_secrets"`
			Autoscaling  *spec.KubeAutoscaling `json:"autoscaling"`
			TrustKeys    []string              `json:"trust_keys"`
			Executor     string                `json:"executor,omitempty"`
		}{c.Image, c.Replicas, c.Resources, c.NodeSelector, c.Tolerations, c.ImagePullSecrets, c.Autoscaling, c.TrustKeys, c.Executor})
		k += " workload=" + string(b)
	}
	if f := t.Fleet; f != nil {
		// The selector and rollout policy are the controller's: a change
		// reopens the target, which hands the controller the new policy.
		b, _ := json.Marshal(f)
		k += " fleet=" + string(b)
	}
	return k
}

// kubeTarget builds the driver of a kubernetes target: the cluster from
// its kubeconfig and context, the objects' shape from its workload fields,
// and, in mode host, the trust Secret from the spec's trust key files
// (which the driver reads at each Put, so a changed key is deployed); in
// mode spinapp, the registry client that pushes each app's Spin image.
func kubeTarget(t *spec.Target, o Options) (targets.Target, error) {
	k := t.Kubernetes
	cfg, err := kubeconfig.Load(expandHome(k.Kubeconfig), k.Context)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ro := render.Options{
		Namespace: k.Namespace, Image: k.Image, Replicas: k.Replicas,
		NodeSelector: k.NodeSelector, ImagePullSecrets: k.ImagePullSecrets,
	}
	if r := k.Resources; r != nil {
		ro.CPU, ro.Memory = r.CPU, r.Memory
	}
	for _, tol := range k.Tolerations {
		ro.Tolerations = append(ro.Tolerations, render.Toleration{Key: tol.Key, Operator: tol.Operator, Value: tol.Value, Effect: tol.Effect})
	}
	if a := k.Autoscaling; a != nil {
		ro.Autoscaling = &render.Autoscaling{Min: a.Min, Max: a.Max, CPUPercent: a.CPUPercent}
	}
	do := kdriver.Options{Render: ro, TrustKeyFiles: k.TrustKeys, ForceConflicts: o.ForceConflicts, RolloutWait: o.RolloutWait, Logger: o.Logger}
	if o.Verify != nil {
		do.Verify = verifier{*o.Verify}
	}
	if k.Mode == spec.KubeModeSpinApp {
		rc := o.Registry
		if rc == nil {
			creds, err := registry.EnvCredentials(os.Getenv)
			if err != nil {
				return nil, err
			}
			if rc, err = registry.New(registry.Options{Credentials: creds, Logger: o.Logger}); err != nil {
				return nil, fmt.Errorf("registry: %w", err)
			}
		}
		do.Mode, do.SpinImages, do.TrustKeyFiles = kdriver.ModeSpinApp, spinImages{c: rc, sign: o.SpinSign}, nil
		ro.Executor = k.Executor
		do.Render = ro
	}
	return kdriver.New(cfg, do)
}

// verifier verifies artifacts for the Kubernetes driver with the signer,
// against the PEM keys the pods get.
type verifier struct{ ro signer.RegistryOptions }

func (v verifier) VerifyArtifact(ctx context.Context, ref string, trustKeys map[string][]byte) error {
	var pol signer.Policy
	for _, name := range slices.Sorted(maps.Keys(trustKeys)) {
		pub, err := signer.LoadPublicKey(trustKeys[name])
		if err != nil {
			return fmt.Errorf("trust key %s: %w", name, err)
		}
		pol.Keys = append(pol.Keys, signer.Key{Name: name, Public: pub})
	}
	_, err := signer.Verify(ctx, ref, pol, signer.VerifyOptions{Registry: v.ro})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, signer.ErrRegistry), errors.Is(err, signer.ErrNotFound), errors.Is(err, signer.ErrTrustRootUnavailable):
		return err // could not tell
	}
	return untrusted{err}
}

// untrusted is a verification failure, which the driver reports as an
// *UntrustedError.
type untrusted struct{ error }

func (e untrusted) Is(target error) bool { return target == kdriver.ErrUntrusted }
func (e untrusted) Unwrap() error        { return e.error }

// spinImages makes Spin images with a registry client and, with sign,
// signs each one it pushes.
type spinImages struct {
	c    *registry.Client
	sign *SpinSigning
}

func (s spinImages) SpinImage(ctx context.Context, ref string, push bool) (string, error) {
	img, err := s.c.SpinImageFor(ctx, ref, push)
	if err != nil {
		return "", err
	}
	if push && s.sign != nil && s.sign.Key != nil {
		// Signing a digest that already carries this key's signature
		// stores nothing new (signer.Sign), so every Put may ask.
		if _, err := signer.Sign(ctx, img.Ref, s.sign.Key, s.sign.Options); err != nil {
			return "", fmt.Errorf("sign Spin image %s: %w", img.Ref, err)
		}
	}
	return img.Ref, nil
}

// hostTarget builds the target of a host block: one control API client, or
// a driver.Group when the block lists several endpoints (every host runs
// every app; see driver.Group for how health is decided).
func hostTarget(t *spec.Target, o Options) (targets.Target, error) {
	if t.Host == nil || len(t.Host.Endpoints) == 0 {
		return nil, fmt.Errorf("no endpoint")
	}
	var clients []*driver.Client
	for _, ep := range t.Host.Endpoints {
		c, err := hostClientFor(t, ep, o)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	if len(clients) == 1 {
		return clients[0], nil
	}
	return driver.NewGroup(clients...)
}

// hostClientFor builds the control API client for one endpoint of host
// target t: with the credential t names, which must exist and allow the
// endpoint, or with o.DefaultToken when t names none.
func hostClientFor(t *spec.Target, endpoint string, o Options) (*driver.Client, error) {
	name := t.Host.Credential
	if name == "" {
		return hostClient(nil, endpoint, o)
	}
	cred := o.Credentials[name]
	switch {
	case cred == nil && len(o.Credentials) == 0:
		return nil, fmt.Errorf("it names credential %q, but no credentials file defines it (pass --credentials FILE)", name)
	case cred == nil:
		return nil, fmt.Errorf("it names credential %q, which the credentials file does not define (it defines %s)", name, strings.Join(o.Credentials.Names(), ", "))
	case !cred.Allows(endpoint):
		return nil, fmt.Errorf("credential %q may not be sent to %s: the credentials file allows it only for %s", name, endpoint, strings.Join(cred.Endpoints, ", "))
	}
	return hostClient(cred, endpoint, o)
}

// hostClient builds a control API client for one endpoint of a host
// target: the token and TLS files of cred, or o.DefaultToken without one.
// The caller has checked that cred allows endpoint.
func hostClient(cred *spec.Credential, endpoint string, o Options) (*driver.Client, error) {
	opts := driver.ClientOptions{LockTTL: o.LockTTL, Logger: o.Logger}
	if cred == nil {
		return driver.NewClient(endpoint, o.DefaultToken, opts)
	}
	token := ""
	switch {
	case cred.TokenEnv != "":
		token = os.Getenv(cred.TokenEnv)
		if token == "" {
			return nil, fmt.Errorf("credential %s: environment variable %s (token_env) is empty; set it to the host's control token", cred.Name, cred.TokenEnv)
		}
	case cred.TokenFile != "":
		b, err := os.ReadFile(expandHome(cred.TokenFile))
		if err != nil {
			return nil, fmt.Errorf("credential %s: token_file: %w", cred.Name, err)
		}
		token = strings.TrimSpace(string(b))
	}
	if cred.CAFile != "" || cred.ClientCertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cred.CAFile != "" {
			pem, err := os.ReadFile(expandHome(cred.CAFile))
			if err != nil {
				return nil, fmt.Errorf("credential %s: ca_file: %w", cred.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("credential %s: ca_file %s: no PEM certificates", cred.Name, cred.CAFile)
			}
			cfg.RootCAs = pool
		}
		if cred.ClientCertFile != "" {
			cert, err := tls.LoadX509KeyPair(expandHome(cred.ClientCertFile), expandHome(cred.ClientKeyFile))
			if err != nil {
				return nil, fmt.Errorf("credential %s: client certificate: %w", cred.Name, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = cfg
	}
	return driver.NewClient(endpoint, token, opts)
}

// expandHome expands a leading "~/" to the user's home directory.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}
