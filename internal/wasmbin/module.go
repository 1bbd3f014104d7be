package wasmbin

import (
	"encoding/binary"
	"fmt"
)

// Magic is the first four bytes of every WebAssembly binary.
const Magic = "\x00asm"

// Version is the binary format version of a core module; components
// (the component model) have others.
const Version = 1

// ErrNotModule is wrapped by [Parse]'s error when the input does not start
// with a core module's header (it is too short, another file type, or a
// component). It wraps [ErrMalformed].
var ErrNotModule = fmt.Errorf("%w: not a core wasm module", ErrMalformed)

// SectionID identifies a section.
type SectionID byte

// The section ids.
const (
	SectionCustom    SectionID = 0
	SectionType      SectionID = 1
	SectionImport    SectionID = 2
	SectionFunction  SectionID = 3
	SectionTable     SectionID = 4
	SectionMemory    SectionID = 5
	SectionGlobal    SectionID = 6
	SectionExport    SectionID = 7
	SectionStart     SectionID = 8
	SectionElement   SectionID = 9
	SectionCode      SectionID = 10
	SectionData      SectionID = 11
	SectionDataCount SectionID = 12
	SectionTag       SectionID = 13 // exception handling
)

// Section is one section of a module.
type Section struct {
	// ID is the section id.
	ID SectionID
	// Payload is the section's contents after its id and size, sharing the
	// module's memory.
	Payload []byte
	// Offset is where the section (its id byte) starts in the module.
	Offset int
}

// Module is a module split into its sections, in the order of the binary.
// Parse checks only the header and that each section fits; the contents
// are decoded when asked for.
type Module struct {
	// Sections are the module's sections, custom ones included.
	Sections []Section
}

// Parse splits wasm into sections. It checks the header (magic and
// version 1, else [ErrNotModule]) and that every section's size fits in
// what follows; it neither copies wasm nor checks the order of sections.
func Parse(wasm []byte) (*Module, error) {
	if len(wasm) < 8 || string(wasm[:4]) != Magic || binary.LittleEndian.Uint32(wasm[4:8]) != Version {
		return nil, ErrNotModule
	}
	m := &Module{}
	r := Reader{b: wasm, i: 8}
	for r.Len() > 0 {
		off := r.i
		id := SectionID(r.Byte())
		n := r.U32()
		p := r.Bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", id, off, r.err)
		}
		m.Sections = append(m.Sections, Section{ID: id, Payload: p, Offset: off})
	}
	return m, nil
}

// Section returns the first section with id (custom sections: the first
// custom section of any name).
func (m *Module) Section(id SectionID) (Section, bool) {
	for _, s := range m.Sections {
		if s.ID == id {
			return s, true
		}
	}
	return Section{}, false
}

// Vector reads the count that starts a section (or any vector) and returns
// it with the bytes after it.
func Vector(payload []byte) (count uint32, items []byte, err error) {
	r := NewReader(payload)
	count = r.U32()
	if r.err != nil {
		return 0, nil, r.err
	}
	return count, r.Rest(), nil
}

// ExternKind is the kind of an import or export.
type ExternKind byte

// The import and export kinds.
const (
	KindFunction ExternKind = 0
	KindTable    ExternKind = 1
	KindMemory   ExternKind = 2
	KindGlobal   ExternKind = 3
	KindTag      ExternKind = 4 // exception handling
)

// String returns "function", "table", "memory", "global" or "tag" (or
// "kind 0x.." for another byte).
func (k ExternKind) String() string {
	switch k {
	case KindFunction:
		return "function"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	case KindTag:
		return "tag"
	}
	return fmt.Sprintf("kind %#x", byte(k))
}

// Import is one entry of the import section.
type Import struct {
	Module, Name string
	Kind         ExternKind
	// Memory is the limits of a memory import (Flags bit 2: 64-bit), and
	// zero for the other kinds.
	Memory Limits
}

// minImportSize is the fewest bytes an import takes (two empty names, a
// kind, a one-byte index).
const minImportSize = 4

// Imports decodes the import section, or returns nil when there is none.
func (m *Module) Imports() ([]Import, error) {
	s, ok := m.Section(SectionImport)
	if !ok {
		return nil, nil
	}
	return Imports(s.Payload)
}

// Imports decodes the payload of an import section.
func Imports(payload []byte) ([]Import, error) {
	return decodeVector(payload, "import", minImportSize, func(r *Reader) Import {
		im := Import{Module: r.Name(), Name: r.Name(), Kind: ExternKind(r.Byte())}
		switch im.Kind {
		case KindFunction: // type index
			r.U32()
		case KindTable: // reference type, limits
			r.RefType()
			r.Limits()
		case KindMemory:
			im.Memory = r.Limits()
		case KindGlobal: // value type, mutability
			r.ValType()
			r.Byte()
		case KindTag: // attribute, type index
			r.Byte()
			r.U32()
		default:
			r.Fail(fmt.Errorf("%w: unknown import kind %#x", ErrMalformed, byte(im.Kind)))
		}
		return im
	})
}

// decodeVector decodes a vector of what (for messages), each item at least
// minSize bytes, with item. A count that the bytes left cannot hold is an
// error before anything is allocated.
func decodeVector[T any](payload []byte, what string, minSize int, item func(*Reader) T) ([]T, error) {
	r := NewReader(payload)
	n := r.U32()
	if r.err != nil {
		return nil, fmt.Errorf("%s section: %w", what, r.err)
	}
	if uint64(n) > uint64(r.Len()/minSize) {
		return nil, fmt.Errorf("%s section: %w: %d %ss in %d bytes", what, ErrMalformed, n, what, r.Len())
	}
	out := make([]T, 0, n)
	for k := range n {
		v := item(&r)
		if r.err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, k, r.err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Export is one entry of the export section.
type Export struct {
	Name  string
	Kind  ExternKind
	Index uint32
}

// minExportSize is the fewest bytes an export takes.
const minExportSize = 3

// Exports decodes the export section, or returns nil when there is none.
func (m *Module) Exports() ([]Export, error) {
	s, ok := m.Section(SectionExport)
	if !ok {
		return nil, nil
	}
	return Exports(s.Payload)
}

// Exports decodes the payload of an export section.
func Exports(payload []byte) ([]Export, error) {
	return decodeVector(payload, "export", minExportSize, func(r *Reader) Export {
		return Export{Name: r.Name(), Kind: ExternKind(r.Byte()), Index: r.U32()}
	})
}

// FunctionCount returns how many functions the module imports and how
// many it defines (the function section's count). Function indices count
// the imported ones first.
func (m *Module) FunctionCount() (imported, defined uint32, err error) {
	ims, err := m.Imports()
	if err != nil {
		return 0, 0, err
	}
	for _, im := range ims {
		if im.Kind == KindFunction {
			imported++
		}
	}
	if s, ok := m.Section(SectionFunction); ok {
		if defined, _, err = Vector(s.Payload); err != nil {
			return 0, 0, fmt.Errorf("function section: %w", err)
		}
	}
	return imported, defined, nil
}
