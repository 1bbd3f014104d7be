// Package abi names the guest ABI that ferry-host offers to Wasm modules: the
// import modules and functions a module may import, and the exports each
// executor needs. It has no dependencies so the builder can check a module
// before it leaves the build, and the host can refuse one at deploy, from the
// same list. The full contract is written down in targets/host/ABI.md.
package abi

// WASIModule is the WASI preview 1 import module; every function of it is
// offered.
const WASIModule = "wasi_snapshot_preview1"

// HostModule is ferry's own import module: key-value stores, variables,
// outbound HTTP, logging, and the reactor's request/response exchange.
const HostModule = "ferry"

// Signature is the type of a HostModule function. Every parameter and result
// is a Wasm i32, so a count is enough to describe it.
type Signature struct {
	// Params is the number of i32 parameters.
	Params int
	// Results is the number of i32 results (0 or 1).
	Results int
}

// HostSignatures maps each function of HostModule to its signature. The
// meaning of each parameter and result is documented in ABI.md.
var HostSignatures = map[string]Signature{
	"log":                {Params: 3, Results: 0},
	"kv_get":             {Params: 6, Results: 1},
	"kv_set":             {Params: 6, Results: 1},
	"kv_delete":          {Params: 4, Results: 1},
	"var_get":            {Params: 4, Results: 1},
	"http_request":       {Params: 4, Results: 1},
	"http_response_head": {Params: 3, Results: 1},
	"http_body_read":     {Params: 3, Results: 1},
	"http_close":         {Params: 1, Results: 0},
	"req_head":           {Params: 2, Results: 1},
	"req_body_read":      {Params: 2, Results: 1},
	"resp_start":         {Params: 3, Results: 1},
	"resp_write":         {Params: 2, Results: 1},
}

// HostFunctions are the functions of HostModule that the host offers, in the
// order ABI.md documents them.
var HostFunctions = []string{
	"log",
	"kv_get",
	"kv_set",
	"kv_delete",
	"var_get",
	"http_request",
	"http_response_head",
	"http_body_read",
	"http_close",
	"req_head",
	"req_body_read",
	"resp_start",
	"resp_write",
}

// Offered reports whether the host offers the function name of import module
// module.
func Offered(module, name string) bool {
	switch module {
	case WASIModule:
		return true
	case HostModule:
		_, ok := HostSignatures[name]
		return ok
	}
	return false
}

// Result codes returned (as negative i32 values) by HostModule functions.
// Zero or a positive value means success; its meaning depends on the
// function (a length, a handle).
const (
	// OK is success with nothing more to say.
	OK int32 = 0
	// ErrNotFound means the key, variable or handle does not exist.
	ErrNotFound int32 = -1
	// ErrDenied means the component did not declare the store or host.
	ErrDenied int32 = -2
	// ErrIO means the host failed (storage, network); retrying may help.
	ErrIO int32 = -3
	// ErrTooLarge means a size limit was exceeded.
	ErrTooLarge int32 = -4
	// ErrInvalid means the guest passed malformed input (bad pointer, bad
	// request head, response already started).
	ErrInvalid int32 = -5
	// ErrUnsupported means the function is not available in this context
	// (for example req_head in a WAGI module).
	ErrUnsupported int32 = -6
)

// Log levels for the log function, matching log/slog's levels.
const (
	LevelDebug int32 = -4
	LevelInfo  int32 = 0
	LevelWarn  int32 = 4
	LevelError int32 = 8
)

// WAGIEntry is the export a WAGI module runs per request (a WASI command).
const WAGIEntry = "_start"

// ReactorInit is the export a reactor module runs once per instance.
const ReactorInit = "_initialize"

// ReactorHandler is the export a reactor module runs per request. It takes
// no parameters and returns an i32: 0 for success, anything else makes the
// host answer 500.
const ReactorHandler = "ferry_handle"

// RequiredExports returns the function exports a module needs to run under
// executor ("wagi" or "reactor"; empty means "wagi").
func RequiredExports(executor string) []string {
	if executor == "reactor" {
		return []string{ReactorInit, ReactorHandler}
	}
	return []string{WAGIEntry}
}
