package deploy

import (
	"fmt"
	"time"
)

// Executor names how a component's Wasm module is run for a request.
type Executor string

const (
	// ExecutorWAGI runs the module as a CGI program over WASI preview 1: a
	// fresh instance per request, request in environment variables and stdin,
	// response on stdout. It is the default.
	ExecutorWAGI Executor = "wagi"
	// ExecutorReactor initialises the module once (_initialize) and calls its
	// exported handler for each request; instances are pooled.
	ExecutorReactor Executor = "reactor"
)

// Valid reports whether e is a known executor.
func (e Executor) Valid() bool { return e == ExecutorWAGI || e == ExecutorReactor }

// App is the resolved configuration of one app: everything a target needs to
// run it except the Wasm bytes themselves (referenced by digest) and the values
// of secret variables (never stored here). The zero value is not a valid app.
type App struct {
	// Name is the app's name, unique on a target.
	Name string `json:"name"`
	// Hosts are the HTTP host names routed to this app (the Host header,
	// without port). Empty means the app answers on any host name.
	Hosts []string `json:"hosts,omitempty"`
	// Components are the app's components, in spec order.
	Components []Component `json:"components"`
	// Variables are the app-level variables, by name. Secret ones carry no
	// value: the target gets their values through its own channel.
	Variables map[string]Variable `json:"variables,omitempty"`
	// KeyValueStores are the names of the stores the app declares.
	KeyValueStores []string `json:"key_value_stores,omitempty"`
}

// Variable is an app-level variable as stored in an artifact.
type Variable struct {
	// Default is the value used when the target supplies none. It is always
	// empty for a secret variable.
	Default *string `json:"default,omitempty"`
	// Secret marks a value that must never be logged, stored in an artifact
	// or printed.
	Secret bool `json:"secret,omitempty"`
}

// Component is one Wasm module of an app and the way it is served.
type Component struct {
	// Name is unique within the app.
	Name string `json:"name"`
	// Digest is the OCI digest ("sha256:<hex>") of the component's Wasm
	// layer. Empty before the component is built.
	Digest string `json:"digest,omitempty"`
	// Executor is how the module is run; empty means ExecutorWAGI.
	Executor Executor `json:"executor,omitempty"`
	// Routes are the HTTP routes this component answers: exact ("/"),
	// prefix ("/api/...") or with parameters ("/users/:id").
	Routes []string `json:"routes,omitempty"`
	// Env is the static environment given to the guest.
	Env map[string]string `json:"env,omitempty"`
	// Files are paths (relative to the component's source) preopened
	// read-only for the guest.
	Files []string `json:"files,omitempty"`
	// AllowedOutboundHosts lists the hosts the guest may call over HTTP
	// ("https://api.example.com", "http://127.0.0.1:8080"); empty denies all.
	AllowedOutboundHosts []string `json:"allowed_outbound_hosts,omitempty"`
	// KeyValueStores are the app stores this component may use.
	KeyValueStores []string `json:"key_value_stores,omitempty"`
	// Variables maps names the guest asks for to templates over app
	// variables, e.g. {"greeting": "{{ greeting }}"}.
	Variables map[string]string `json:"variables,omitempty"`
	// Limits bound each request.
	Limits Limits `json:"limits,omitempty"`
	// Health, when set, is probed before the component takes traffic.
	Health *Health `json:"health,omitempty"`
}

// Limits bound what one request to a component may use. Zero values mean the
// target's defaults (documented by each target).
type Limits struct {
	// MemoryBytes caps the guest's linear memory.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// Timeout is the request deadline.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxConcurrency caps concurrent requests to the component.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// MaxResponseBytes caps the response body.
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`
}

// Health describes a component's health probe: at deploy (the version
// takes traffic only when it passes) and afterwards, on an interval. Zero
// fields mean the target's defaults; zero fields are left out of the JSON,
// so an artifact of a spec that sets none keeps its digest.
type Health struct {
	// Path is requested with GET; a 2xx answer means healthy.
	Path string `json:"path"`
	// Interval is the time between probes after deploy.
	Interval Duration `json:"interval,omitempty"`
	// Timeout bounds one probe after deploy.
	Timeout Duration `json:"timeout,omitempty"`
	// FailureThreshold is how many probes in a row must fail before the
	// version counts as unhealthy.
	FailureThreshold int `json:"failure_threshold,omitempty"`
	// Bake is how long after its deploy a version that turns unhealthy is
	// rolled back to the previous version by the target itself. Zero means
	// never.
	Bake Duration `json:"bake,omitempty"`
}

// Duration is a time.Duration that encodes to JSON as a Go duration string
// ("5s") so artifacts stay readable.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("deploy: bad duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
