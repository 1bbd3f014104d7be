package builder

import (
	"context"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

// check validates wasm with wazero: a valid module that imports only
// functions ferry-host offers (no memory, table or global), and exports what executor
// needs (abi.RequiredExports). Entry points other than the reactor handler
// must take and return nothing.
func check(ctx context.Context, wasm []byte, executor string) error {
	// The interpreter validates the module like the compiler does, without
	// generating machine code, so it is the cheaper check.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	m, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	defer m.Close(ctx)

	var bad []string
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		if !abi.Offered(mod, name) {
			bad = append(bad, mod+"."+name)
		}
	}
	// The host offers functions only: any memory, table or global import
	// is refused.
	all, err := moduleImports(wasm)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	for _, im := range all {
		if im.kind != 0 {
			bad = append(bad, fmt.Sprintf("%s.%s (%s)", im.module, im.name, im.kind))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s (the host offers all of %s and %s.{%s})", ErrImportNotOffered,
			strings.Join(bad, ", "), abi.WASIModule, abi.HostModule, strings.Join(abi.HostFunctions, ","))
	}

	exports := m.ExportedFunctions()
	var missing []string
	for _, name := range abi.RequiredExports(executor) {
		f, ok := exports[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case name != abi.ReactorHandler && (len(f.ParamTypes()) > 0 || len(f.ResultTypes()) > 0):
			missing = append(missing, fmt.Sprintf("%s with type () -> () (it has %s)", name, signature(f)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: a %s module must export %s", ErrMissingExport, executor, strings.Join(missing, ", "))
	}
	return nil
}

// signature renders f's type like "(i32) -> (i64)".
func signature(f api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(f.ParamTypes()) + " -> " + names(f.ResultTypes())
}
