package builder

import (
	"errors"
	"fmt"
)

// wasmImport is one entry of a module's import section.
type wasmImport struct {
	module, name string
	kind         byte // 0 function, 1 table, 2 memory, 3 global
}

var errShortModule = errors.New("truncated import section")

// importKinds names the import kinds.
var importKinds = [...]string{"function", "table", "memory", "global"}

// moduleImports lists the imports of a binary module. wazero's API shows
// imported functions and memories only; tables and globals are read here.
// It is called after wazero validated the module, and checks every bound
// anyway: malformed input gives an error, never a panic.
func moduleImports(wasm []byte) ([]wasmImport, error) {
	if len(wasm) < 8 {
		return nil, errShortModule
	}
	r := &wasmReader{b: wasm, off: 8}
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(size) > len(r.b)-r.off {
			return nil, errShortModule
		}
		if id != 2 {
			r.off += int(size)
			continue
		}
		sec := &wasmReader{b: r.b[r.off : r.off+int(size)]}
		return sec.imports()
	}
	return nil, nil
}

type wasmReader struct {
	b   []byte
	off int
}

func (r *wasmReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShortModule
	}
	r.off++
	return r.b[r.off-1], nil
}

// u32 reads an unsigned LEB128 number of at most 5 bytes.
func (r *wasmReader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("malformed LEB128 number")
}

func (r *wasmReader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if int(n) > len(r.b)-r.off {
		return "", errShortModule
	}
	r.off += int(n)
	return string(r.b[r.off-int(n) : r.off]), nil
}

func (r *wasmReader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func (r *wasmReader) imports() ([]wasmImport, error) {
	count, err := r.u32()
	if err != nil {
		return nil, err
	}
	var out []wasmImport
	for range count {
		var im wasmImport
		if im.module, err = r.name(); err != nil {
			return nil, err
		}
		if im.name, err = r.name(); err != nil {
			return nil, err
		}
		if im.kind, err = r.byte(); err != nil {
			return nil, err
		}
		switch im.kind {
		case 0: // function: type index
			_, err = r.u32()
		case 1: // table: reference type, limits
			if _, err = r.byte(); err == nil {
				err = r.limits()
			}
		case 2: // memory: limits
			err = r.limits()
		case 3: // global: value type, mutability
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
		default:
			return nil, fmt.Errorf("unknown import kind %#x", im.kind)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}
