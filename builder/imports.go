package builder

import "github.com/ferry-wasm/ferry/internal/wasmbin"

// wasmImport is one entry of a module's import section.
type wasmImport struct {
	module, name string
	kind         wasmbin.ExternKind
}

// moduleImports lists the imports of a binary module. wazero's API shows
// imported functions and memories only; tables and globals are read here.
// It is called after wazero validated the module; wasmbin checks every
// bound anyway: malformed input gives an error, never a panic.
func moduleImports(wasm []byte) ([]wasmImport, error) {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, err
	}
	ims, err := m.Imports()
	if err != nil {
		return nil, err
	}
	var out []wasmImport
	for _, im := range ims {
		out = append(out, wasmImport{im.Module, im.Name, im.Kind})
	}
	return out, nil
}
