package spec

import (
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ferry-wasm/ferry/deploy"
)

// Config is the typed result of loading a spec directory. Load returns a
// best-effort Config even when it also returns errors; parts that could not
// be decoded are left out. A Config is a plain value: it is not modified
// after Load returns and may be read from many goroutines.
type Config struct {
	// Dir is the spec directory as given to Load (not made absolute).
	Dir string `json:"dir"`
	// Variables are the declared variables, in file order.
	Variables []*Variable `json:"variables,omitempty"`
	// Apps are the declared apps, in file order.
	Apps []*App `json:"apps,omitempty"`
	// Targets are the declared targets, in file order.
	Targets []*Target `json:"targets,omitempty"`
	// Registry is the registry block; nil means the caller's default
	// (the CLI's embedded local registry).
	Registry *Registry `json:"registry,omitempty"`
	// Trust is the trust policy; nil means no trust block was written.
	Trust *Trust `json:"trust,omitempty"`
	// Files are the parsed spec files by file name, as used in the ranges
	// of diagnostics. Pass it to hcl.NewDiagnosticTextWriter to render
	// diagnostics with source snippets.
	Files map[string]*hcl.File `json:"-"`
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Target returns the target named name, or nil.
func (c *Config) Target(name string) *Target {
	for _, t := range c.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Variable returns the variable named name, or nil.
func (c *Config) Variable(name string) *Variable {
	for _, v := range c.Variables {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Variable is a top-level variable block. Values are strings.
type Variable struct {
	// Name is the variable's name, used as var.NAME in expressions and as
	// "{{ NAME }}" in component variable templates.
	Name string `json:"name"`
	// Default is the declared default; nil when none was written. Always
	// nil for a secret variable.
	Default *string `json:"default,omitempty"`
	// Value is the value var.NAME had during this load: the one given in
	// LoadOptions.Vars, else Default. Always nil for a secret variable.
	Value *string `json:"value,omitempty"`
	// Secret marks a value that is resolved on the target at run time and
	// never stored, logged or written into an artifact.
	Secret bool `json:"secret,omitempty"`
	// Description is free text for people.
	Description string `json:"description,omitempty"`
	// DeclRange is the range of the block header.
	DeclRange hcl.Range `json:"-"`
}

// App is an app block: a set of components served together under one set
// of host names.
type App struct {
	// Name is unique in the spec; it becomes part of OCI repository paths
	// and Kubernetes object names.
	Name string `json:"name"`
	// Hosts are the HTTP host names routed to the app; empty means any.
	Hosts []string `json:"hosts,omitempty"`
	// KeyValueStores are the stores the app declares.
	KeyValueStores []string `json:"key_value_stores,omitempty"`
	// Components are the app's components, in file order.
	Components []*Component `json:"components,omitempty"`
	// Deploy is the app's deploy policy (its deploy block); nil means the
	// defaults of whoever applies (LANGUAGE.md, "deploy").
	Deploy *DeployPolicy `json:"deploy,omitempty"`
	// DeclRange is the range of the block header.
	DeclRange hcl.Range `json:"-"`
}

// DeployPolicy is how ferry plan/apply, the agent and ferry up deploy an
// app to a target: how long a new version may take to report healthy,
// and whether a failed one is rolled back. Zero fields mean the applier's
// defaults.
type DeployPolicy struct {
	// Timeout bounds deploying the app on one target, health check
	// included; zero means the default (5 minutes).
	Timeout time.Duration `json:"timeout,omitempty"`
	// AutoRollback says whether a version that fails to deploy is rolled
	// back to the previous one; nil means the default (true).
	AutoRollback *bool `json:"auto_rollback,omitempty"`
}

// Component returns the component named name, or nil.
func (a *App) Component(name string) *Component {
	for _, c := range a.Components {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Component is one Wasm module of an app.
type Component struct {
	// Name is unique within the app.
	Name string `json:"name"`
	// Source says where the component's Wasm comes from.
	Source Source `json:"source"`
	// Executor is how the module is run; Load always sets it (default
	// deploy.ExecutorWAGI).
	Executor deploy.Executor `json:"executor"`
	// Routes are the HTTP routes the component answers, as written.
	Routes []string `json:"routes,omitempty"`
	// Env is the static environment of the guest.
	Env map[string]string `json:"env,omitempty"`
	// Files are paths relative to the spec directory, preopened read-only.
	Files []string `json:"files,omitempty"`
	// AllowedOutboundHosts are the URLs ("https://api.example.com") the
	// guest may call; empty denies all.
	AllowedOutboundHosts []string `json:"allowed_outbound_hosts,omitempty"`
	// KeyValueStores are the app stores this component may use.
	KeyValueStores []string `json:"key_value_stores,omitempty"`
	// Variables maps the names the guest asks for to templates over
	// variables ("{{ api_token }}"), resolved on the target at run time.
	Variables map[string]string `json:"variables,omitempty"`
	// Limits bound each request; zero fields mean the target's defaults.
	Limits Limits `json:"limits"`
	// Health is the health probe; nil means none.
	Health *Health `json:"health,omitempty"`
	// DeclRange is the range of the block header.
	DeclRange hcl.Range `json:"-"`
}

// SourceKind names where a component's Wasm comes from.
type SourceKind string

const (
	// SourceGo is a Go package built with GOOS=wasip1 GOARCH=wasm.
	SourceGo SourceKind = "go"
	// SourceBuild is a build command that writes a .wasm file.
	SourceBuild SourceKind = "build"
	// SourceWasm is a prebuilt .wasm file.
	SourceWasm SourceKind = "wasm"
)

// Source is a component's source. Which fields are set depends on Kind.
type Source struct {
	// Kind is the kind of source; empty only when the component had no
	// valid source (and Load reported an error).
	Kind SourceKind `json:"kind,omitempty"`
	// GoPackage is the absolute directory of the Go main package (SourceGo).
	GoPackage string `json:"go_package,omitempty"`
	// Command is the build command, run by a shell in Workdir (SourceBuild).
	Command string `json:"command,omitempty"`
	// Output is the absolute path of the .wasm the command writes
	// (SourceBuild).
	Output string `json:"output,omitempty"`
	// Workdir is the absolute directory the command runs in; defaults to
	// the spec directory (SourceBuild).
	Workdir string `json:"workdir,omitempty"`
	// Watch are absolute glob patterns of the command's inputs
	// (SourceBuild).
	Watch []string `json:"watch,omitempty"`
	// Wasm is the absolute path of the prebuilt module (SourceWasm).
	Wasm string `json:"wasm,omitempty"`
}

// Limits bound what one request to a component may use. Zero values mean the
// target's defaults.
type Limits struct {
	// MemoryBytes caps the guest's linear memory.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// Timeout is the request deadline.
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxConcurrency caps concurrent requests to the component.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// MaxResponseBytes caps the response body.
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`
}

// Health is a component's health probe. Zero durations and threshold
// mean the target's defaults (LANGUAGE.md, "health").
type Health struct {
	// Path is requested with GET; a 2xx answer means healthy.
	Path string `json:"path"`
	// Interval is the time between probes after deploy.
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout bounds one probe after deploy.
	Timeout time.Duration `json:"timeout,omitempty"`
	// FailureThreshold is how many failed probes in a row make the
	// version unhealthy.
	FailureThreshold int `json:"failure_threshold,omitempty"`
	// Bake is how long after its deploy an unhealthy version is rolled
	// back by the target; zero means never.
	Bake time.Duration `json:"bake,omitempty"`
}

// TargetType is the kind of place a target deploys to.
type TargetType string

const (
	// TargetHost is one or more bare hosts running ferry-host.
	TargetHost TargetType = "host"
	// TargetKubernetes is a Kubernetes cluster.
	TargetKubernetes TargetType = "kubernetes"
	// TargetFleet is a fleet of edge devices.
	TargetFleet TargetType = "fleet"
)

// Target is a target block. Exactly one of Host, Kubernetes and Fleet is
// set, matching Type, when Type is valid.
type Target struct {
	// Name is unique in the spec.
	Name string `json:"name"`
	// Type is the kind of target.
	Type TargetType `json:"type"`
	// Apps are the names of the apps deployed to the target.
	Apps []string `json:"apps"`
	// Host holds the fields of a host target.
	Host *HostTarget `json:"host,omitempty"`
	// Kubernetes holds the fields of a kubernetes target.
	Kubernetes *KubeTarget `json:"kubernetes,omitempty"`
	// Fleet holds the fields of a fleet target.
	Fleet *FleetTarget `json:"fleet,omitempty"`
	// DeclRange is the range of the block header.
	DeclRange hcl.Range `json:"-"`
}

// HostTarget is how ferry reaches ferry-host control endpoints. The spec
// names no secret: Credential names an entry of the operator's
// credentials file (see Credentials), which holds the token and TLS files
// and the endpoints they may be sent to.
type HostTarget struct {
	// Endpoints are the control API base URLs, at least one.
	Endpoints []string `json:"endpoints"`
	// Credential names the operator's credential for these endpoints.
	// Empty means none: the agent sends no token; ferry plan, apply and
	// destroy by hand send the --host-token-file / FERRY_HOST_TOKEN token.
	Credential string `json:"credential,omitempty"`
}

// KubeTarget is a Kubernetes cluster.
type KubeTarget struct {
	// Kubeconfig is the kubeconfig file; empty means the usual lookup
	// ($KUBECONFIG, then ~/.kube/config).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context; empty means the current one.
	Context string `json:"context,omitempty"`
	// Namespace is where the app's objects go; Load defaults it to
	// "default".
	Namespace string `json:"namespace"`
	// Mode is "host" (ferry's own host image; the default) or "spinapp"
	// (a SpinKube SpinApp).
	Mode string `json:"mode"`
	// Executor is the SpinAppExecutor the SpinApps name (mode "spinapp"
	// only); empty means "containerd-shim-spin", the one SpinKube
	// installs.
	Executor string `json:"executor,omitempty"`
	// Image is the ferry-host container image the app's pods run
	// (required in mode "host"), best pinned by digest. Mode "spinapp"
	// does not use it: each app's image is the Spin app ferry makes of
	// its artifact.
	Image string `json:"image,omitempty"`
	// Replicas is the Deployment's replica count; Load defaults it to 1.
	// It is 0 when Autoscaling is set: the HorizontalPodAutoscaler owns
	// the count then.
	Replicas int32 `json:"replicas,omitempty"`
	// Resources are the container's CPU and memory; nil sets none.
	Resources *KubeResources `json:"resources,omitempty"`
	// NodeSelector constrains the pods to nodes with these labels.
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// Tolerations let the pods run on tainted nodes, in spec order.
	Tolerations []KubeToleration `json:"tolerations,omitempty"`
	// ImagePullSecrets name Secrets of the namespace used to pull Image.
	ImagePullSecrets []string `json:"image_pull_secrets,omitempty"`
	// Autoscaling, when set, adds an autoscaling/v2 HorizontalPodAutoscaler
	// on CPU utilisation; nil means a fixed Replicas.
	Autoscaling *KubeAutoscaling `json:"autoscaling,omitempty"`
	// TrustKeys are the spec's trust keys (the trust block's keys,
	// absolute paths), which the pods verify artifacts with; Load copies
	// them here. In mode "host" Load requires at least one.
	TrustKeys []string `json:"trust_keys,omitempty"`
}

// KubeResources are a container's CPU and memory, used as both its
// requests and its limits (so the pods get the Guaranteed QoS class and
// an autoscaler's utilisation is a share of a fixed amount). Each is a
// Kubernetes quantity ("100m", "0.5", "128Mi", "1G"); empty sets none.
type KubeResources struct {
	// CPU in cores ("250m" is a quarter core).
	CPU string `json:"cpu,omitempty"`
	// Memory in bytes ("128Mi").
	Memory string `json:"memory,omitempty"`
}

// KubeToleration is one Kubernetes pod toleration.
type KubeToleration struct {
	// Key is the taint key; empty (with Operator "Exists") tolerates
	// every taint.
	Key string `json:"key,omitempty"`
	// Operator is "Equal" (the default) or "Exists".
	Operator string `json:"operator"`
	// Value is the taint value Equal compares with; empty with Exists.
	Value string `json:"value,omitempty"`
	// Effect is "NoSchedule", "PreferNoSchedule", "NoExecute" or empty
	// (every effect).
	Effect string `json:"effect,omitempty"`
}

// KubeAutoscaling is a HorizontalPodAutoscaler on average CPU
// utilisation (a share of the CPU request, so Resources.CPU is required).
type KubeAutoscaling struct {
	// Min is the fewest replicas; Load defaults it to 1.
	Min int32 `json:"min"`
	// Max is the most replicas (required, at least Min).
	Max int32 `json:"max"`
	// CPUPercent is the target average CPU utilisation in percent of the
	// request; Load defaults it to 80.
	CPUPercent int32 `json:"cpu_percent"`
}

// Kubernetes modes.
const (
	KubeModeHost    = "host"
	KubeModeSpinApp = "spinapp"
)

// FleetTarget is a fleet of edge devices.
type FleetTarget struct {
	// Selector picks the devices by their labels; empty selects all.
	Selector LabelSelector `json:"selector"`
	// Rollout is the rollout policy. Load always sets it for a fleet
	// target: DefaultRollout when no rollout block was written, with
	// DefaultRollout's values for the fields a block leaves out.
	Rollout *Rollout `json:"rollout"`
}

// Rollout is how a new version spreads over a fleet.
type Rollout struct {
	// Waves are applied in order. A wave without a selector covers Percent
	// percent of the fleet (cumulative); a wave with a selector covers
	// Percent percent (default 100) of the devices it matches. The last
	// wave always covers the whole fleet.
	Waves []Wave `json:"waves"`
	// RateLimit is how many devices may start an update per minute;
	// 0 means no limit. With RateGrowth it is the rate of the first wave.
	RateLimit int `json:"rate_limit,omitempty"`
	// RateGrowth multiplies the rate limit at each wave (Greengrass's
	// exponential rate): wave k (from 0) may start
	// RateLimit × RateGrowth^k devices per minute, rounded down, at most
	// RateMax. It is at least 1 and finite; 0 and 1 mean no growth. It has
	// no effect without a RateLimit.
	RateGrowth float64 `json:"rate_growth,omitempty"`
	// RateMax caps the rate limit that RateGrowth grows; 0 means no cap.
	// Load refuses a cap below RateLimit.
	RateMax int `json:"rate_max,omitempty"`
	// HealthGate decides when a wave is good enough to go on.
	HealthGate HealthGate `json:"health_gate"`
	// Abort decides when a rollout stops.
	Abort Abort `json:"abort"`
	// DeviceTimeout is how long one device may take to report the new
	// version healthy before it counts as failed.
	DeviceTimeout time.Duration `json:"device_timeout"`
	// AutoRollback returns aborted devices to the previous version.
	AutoRollback bool `json:"auto_rollback,omitempty"`
}

// Wave is one step of a rollout.
type Wave struct {
	// Percent is the cumulative share, 1 to 100, of the devices in the
	// wave's scope (the fleet, or those matching Selector).
	Percent int `json:"percent"`
	// Selector, when not empty, limits the wave to matching devices.
	Selector LabelSelector `json:"selector,omitzero"`
}

// HealthGate is the condition for a wave to pass.
type HealthGate struct {
	// SuccessRatio is the share of the wave's devices, 0 to 1, that must
	// report healthy.
	SuccessRatio float64 `json:"success_ratio"`
	// Soak is how long the wave must stay healthy before the next starts.
	Soak time.Duration `json:"soak"`
}

// Abort is the condition that stops a rollout.
type Abort struct {
	// FailureRatio, 0 to 1: the rollout stops when more than this share of
	// the updated devices failed, once MinSample devices have reported.
	FailureRatio float64 `json:"failure_ratio"`
	// MinSample is how many updated devices must have reported before
	// FailureRatio is applied.
	MinSample int `json:"min_sample"`
}

// DefaultRollout returns the rollout policy used when a fleet target has no
// rollout block, and the values used for fields a rollout block leaves out:
// one wave of 100%, no rate limit, a health gate of 0.95 success with one
// minute of soak, abort past 10% failures once 5 devices have reported, 5
// minutes per device, and automatic rollback.
func DefaultRollout() *Rollout {
	return &Rollout{
		Waves:         []Wave{{Percent: 100}},
		HealthGate:    HealthGate{SuccessRatio: 0.95, Soak: time.Minute},
		Abort:         Abort{FailureRatio: 0.1, MinSample: 5},
		DeviceTimeout: 5 * time.Minute,
		AutoRollback:  true,
	}
}

// Registry is the OCI registry apps are pushed to.
type Registry struct {
	// Repository is the repository prefix, "host[:port]/path"; an app named
	// A is pushed to Repository + "/" + A.
	Repository string `json:"repository"`
	// Insecure allows plain HTTP to the repository's registry host, which
	// is otherwise reached over HTTPS (loopback hosts always use plain
	// HTTP). It applies to that host only, not to others the caller uses.
	Insecure bool `json:"insecure,omitempty"`
	// DeclRange is the range of the block header.
	DeclRange hcl.Range `json:"-"`
}

// Trust is who may sign what runs: public keys and keyless identities.
type Trust struct {
	// Keys are absolute paths of PEM public keys inside the spec directory.
	Keys []string `json:"keys,omitempty"`
	// Identities are the accepted keyless (Fulcio) signer identities.
	Identities []Identity `json:"identities,omitempty"`
	// DeclRange is the range of the block header; diagnostics about the
	// policy (an artifact it refuses) point here.
	DeclRange hcl.Range `json:"-"`
}

// Identity is one keyless signer identity. Exactly one of Issuer and
// IssuerRegexp is set, and exactly one of Subject and SubjectRegexp.
type Identity struct {
	// Issuer is the exact OIDC issuer URL.
	Issuer string `json:"issuer,omitempty"`
	// Subject is the exact certificate subject (an email or URI).
	Subject string `json:"subject,omitempty"`
	// IssuerRegexp is a Go regular expression matching the issuer.
	IssuerRegexp string `json:"issuer_regexp,omitempty"`
	// SubjectRegexp is a Go regular expression matching the subject.
	SubjectRegexp string `json:"subject_regexp,omitempty"`
}
