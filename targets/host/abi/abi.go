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
// outbound HTTP and logging.
const HostModule = "ferry"

// HostFunctions are the functions of HostModule that the host offers.
// The signatures are documented in ABI.md.
var HostFunctions = []string{
	"log",
	"kv_get",
	"kv_set",
	"kv_delete",
	"var_get",
	"http_request",
}

// Offered reports whether the host offers the function name of import module
// module.
func Offered(module, name string) bool {
	switch module {
	case WASIModule:
		return true
	case HostModule:
		for _, f := range HostFunctions {
			if f == name {
				return true
			}
		}
	}
	return false
}

// WAGIEntry is the export a WAGI module runs per request (a WASI command).
const WAGIEntry = "_start"

// ReactorInit is the export a reactor module runs once per instance.
const ReactorInit = "_initialize"

// ReactorHandler is the export a reactor module runs per request.
const ReactorHandler = "ferry_handle"

// RequiredExports returns the function exports a module needs to run under
// executor ("wagi" or "reactor"; empty means "wagi").
func RequiredExports(executor string) []string {
	if executor == "reactor" {
		return []string{ReactorInit, ReactorHandler}
	}
	return []string{WAGIEntry}
}
