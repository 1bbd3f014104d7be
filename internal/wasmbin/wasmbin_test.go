package wasmbin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readModule(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "module.wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// header is the start of every core module.
const header = "\x00asm\x01\x00\x00\x00"

func TestParse(t *testing.T) {
	t.Parallel()
	m, err := Parse(readModule(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []SectionID
	for _, s := range m.Sections {
		ids = append(ids, s.ID)
	}
	want := []SectionID{SectionType, SectionImport, SectionFunction, SectionGlobal, SectionExport, SectionCode, SectionCustom}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("section ids (-want +got):\n%s", diff)
	}
	if m.Sections[0].Offset != 8 {
		t.Errorf("first section at %d, want 8", m.Sections[0].Offset)
	}
	if s, ok := m.Section(SectionCustom); !ok || !bytes.HasPrefix(s.Payload, []byte("\x04name")) {
		t.Errorf("custom section %q, %v; want the name section", s.Payload, ok)
	}
	if _, ok := m.Section(SectionStart); ok {
		t.Error("a start section found in a module without one")
	}

	ims, err := m.Imports()
	if err != nil {
		t.Fatal(err)
	}
	wantImports := []Import{
		{Module: "wasi_snapshot_preview1", Name: "fd_write", Kind: KindFunction},
		{Module: "env", Name: "t", Kind: KindTable},
		{Module: "env", Name: "memory", Kind: KindMemory, Memory: Limits{Flags: 1, Min: 1, Max: 4}},
		{Module: "env", Name: "g", Kind: KindGlobal},
	}
	if diff := cmp.Diff(wantImports, ims); diff != "" {
		t.Errorf("imports (-want +got):\n%s", diff)
	}

	exs, err := m.Exports()
	if err != nil {
		t.Fatal(err)
	}
	wantExports := []Export{
		{Name: "spin", Kind: KindFunction, Index: 1},
		{Name: "counter", Kind: KindGlobal, Index: 1},
		{Name: "mem", Kind: KindMemory, Index: 0},
		{Name: "tab", Kind: KindTable, Index: 0},
	}
	if diff := cmp.Diff(wantExports, exs); diff != "" {
		t.Errorf("exports (-want +got):\n%s", diff)
	}

	imported, defined, err := m.FunctionCount()
	if err != nil || imported != 1 || defined != 2 {
		t.Errorf("FunctionCount = %d, %d, %v; want 1, 2, nil", imported, defined, err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		wasm      string
		notModule bool
	}{
		{"empty", "", true},
		{"short header", "\x00asm\x01\x00", true},
		{"other magic", "\x7fELF\x01\x00\x00\x00", true},
		{"component", "\x00asm\x0d\x00\x01\x00", true},
		{"version 2", "\x00asm\x02\x00\x00\x00", true},
		{"no section size", header + "\x01", false},
		{"truncated section size", header + "\x01\x80", false},
		{"section past the end", header + "\x01\x05\x00", false},
		{"section size of 6 bytes", header + "\x01\x80\x80\x80\x80\x80\x00", false},
		{"section size over 2^32", header + "\x01\xff\xff\xff\xff\x7f", false},
		{"second section truncated", header + "\x01\x01\x00\x03\x02\x01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.wasm))
			if err == nil || m != nil {
				t.Fatalf("Parse = %v, %v; want an error", m, err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if errors.Is(err, ErrNotModule) != tt.notModule {
				t.Errorf("error %v: wraps ErrNotModule = %v, want %v", err, !tt.notModule, tt.notModule)
			}
		})
	}
}

func TestParseEmptyModule(t *testing.T) {
	t.Parallel()
	m, err := Parse([]byte(header))
	if err != nil || len(m.Sections) != 0 {
		t.Fatalf("Parse(header) = %+v, %v; want no sections", m, err)
	}
	ims, err := m.Imports()
	if ims != nil || err != nil {
		t.Errorf("Imports = %v, %v; want nil, nil", ims, err)
	}
	exs, err := m.Exports()
	if exs != nil || err != nil {
		t.Errorf("Exports = %v, %v; want nil, nil", exs, err)
	}
	if i, d, err := m.FunctionCount(); i != 0 || d != 0 || err != nil {
		t.Errorf("FunctionCount = %d, %d, %v; want 0, 0, nil", i, d, err)
	}
}

// TestPrefixes: every prefix of the fixture parses or fails with
// ErrMalformed, and so do its sections' decoders; none panics.
func TestPrefixes(t *testing.T) {
	t.Parallel()
	b := readModule(t)
	for n := range len(b) {
		if err := walk(b[:n]); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix %d: %v does not wrap ErrMalformed", n, err)
		}
	}
	if err := walk(b); err != nil {
		t.Fatalf("whole module: %v", err)
	}
}

func TestU32(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint32
		err  bool
		n    int // bytes read
	}{
		{"\x00", 0, false, 1},
		{"\x7f", 127, false, 1},
		{"\x80\x01", 128, false, 2},
		{"\x80\x00", 0, false, 2}, // padded: allowed
		{"\xe5\x8e\x26", 624485, false, 3},
		{"\xff\xff\xff\xff\x0f", 0xFFFFFFFF, false, 5},
		{"\xff\xff\xff\xff\x1f", 0, true, 5},     // 33 bits
		{"\x80\x80\x80\x80\x80\x00", 0, true, 6}, // 6 bytes
		{"", 0, true, 0},
		{"\x80", 0, true, 1},
	}
	for _, tt := range tests {
		r := NewReader([]byte(tt.in))
		got := r.U32()
		if got != tt.want || (r.Err() != nil) != tt.err {
			t.Errorf("U32(% x) = %d, %v; want %d, error %v", tt.in, got, r.Err(), tt.want, tt.err)
		}
		if tt.err && r.Len() != 0 {
			t.Errorf("U32(% x): %d bytes left after an error, want 0", tt.in, r.Len())
		}
		if !tt.err && r.Offset() != tt.n {
			t.Errorf("U32(% x) read %d bytes, want %d", tt.in, r.Offset(), tt.n)
		}
	}
}

func TestU64(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"\x00", 0, false},
		{"\x80\x80\x80\x80\x10", 1 << 32, false},
		{"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 1<<64 - 1, false},
		{"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x03", 0, true},
		{"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 0, true},
		{"\xff", 0, true},
	}
	for _, tt := range tests {
		r := NewReader([]byte(tt.in))
		if got := r.U64(); got != tt.want || (r.Err() != nil) != tt.err {
			t.Errorf("U64(% x) = %d, %v; want %d, error %v", tt.in, got, r.Err(), tt.want, tt.err)
		}
	}
}

func TestReaderSticky(t *testing.T) {
	t.Parallel()
	r := NewReader([]byte("\x05ab\x01"))
	if name := r.Name(); name != "" || r.Err() == nil {
		t.Fatalf("Name past the end = %q, %v; want an error", name, r.Err())
	}
	first := r.Err()
	if c := r.Byte(); c != 0 || r.Err() != first {
		t.Errorf("after an error Byte = %d, %v; want 0 and the first error", c, r.Err())
	}
	r.Fail(errors.New("later"))
	if r.Err() != first {
		t.Errorf("Fail replaced the first error with %v", r.Err())
	}
	r = NewReader([]byte("abc"))
	if p := r.Bytes(-1); p != nil || r.Err() == nil {
		t.Errorf("Bytes(-1) = %q, %v; want an error", p, r.Err())
	}
	var zero Reader
	if c := zero.Byte(); c != 0 || zero.Err() == nil {
		t.Errorf("zero Reader Byte = %d, %v; want an error", c, zero.Err())
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Limits
	}{
		{"\x00\x01", Limits{Min: 1}},
		{"\x01\x01\x80\x02", Limits{Flags: 1, Min: 1, Max: 256}},
		{"\x05\x00\x80\x80\x80\x80\x10", Limits{Flags: 5, Max: 1 << 32}}, // memory64
	}
	for _, tt := range tests {
		r := NewReader([]byte(tt.in))
		if got := r.Limits(); got != tt.want || r.Err() != nil || r.Len() != 0 {
			t.Errorf("Limits(% x) = %+v, %v, %d left; want %+v", tt.in, got, r.Err(), r.Len(), tt.want)
		}
	}
}

func TestImports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    []Import
		err     bool
	}{
		{"none", "\x00", []Import{}, false},
		{"tag", "\x01\x01e\x01x\x04\x00\x00", []Import{{Module: "e", Name: "x", Kind: KindTag}}, false},
		{"typed reference global", "\x01\x01e\x01x\x03\x64\x00\x00", []Import{{Module: "e", Name: "x", Kind: KindGlobal}}, false},
		{"unknown kind", "\x01\x01e\x01x\x05\x00\x00", nil, true},
		{"count past the bytes", "\xff\xff\xff\xff\x0f\x00\x00\x00\x00", nil, true},
		{"truncated name", "\x01\x05e", nil, true},
		{"empty", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Imports([]byte(tt.payload))
			if (err != nil) != tt.err {
				t.Fatalf("Imports = %v, %v; want error %v", got, err, tt.err)
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); len(tt.want) > 0 && diff != "" {
				t.Errorf("imports (-want +got):\n%s", diff)
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d imports, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestExports(t *testing.T) {
	t.Parallel()
	got, err := Exports([]byte("\x02\x01a\x00\x05\x03bcd\x03\x80\x01"))
	want := []Export{{Name: "a", Kind: KindFunction, Index: 5}, {Name: "bcd", Kind: KindGlobal, Index: 128}}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("Exports = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "\x01\x01a\x00", "\x03\x01a\x00\x05", "\x01\x02a"} {
		if got, err := Exports([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Exports(% x) = %v, %v; want ErrMalformed", bad, got, err)
		}
	}
}

func TestVector(t *testing.T) {
	t.Parallel()
	n, items, err := Vector([]byte("\x80\x01xyz"))
	if n != 128 || string(items) != "xyz" || err != nil {
		t.Errorf("Vector = %d, %q, %v; want 128, xyz, nil", n, items, err)
	}
	if _, _, err := Vector(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Vector(nil) error %v, want ErrMalformed", err)
	}
}

func TestExternKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[ExternKind]string{0: "function", 1: "table", 2: "memory", 3: "global", 4: "tag", 9: "kind 0x9"} {
		if got := k.String(); got != want {
			t.Errorf("ExternKind(%d) = %q, want %q", k, got, want)
		}
	}
}

func TestInstr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		code string
		ops  []byte
		err  bool
	}{
		{"loop with block type", "\x03\x40\x0b", []byte{0x03, 0x0b}, false},
		{"loop with type index", "\x03\x05\x0b", []byte{0x03, 0x0b}, false},
		{"i32.const and local.get", "\x41\x7f\x20\x80\x01", []byte{0x41, 0x20}, false},
		{"i64.const 10 bytes", "\x42\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", []byte{0x42}, false},
		{"f32 and f64", "\x43\x00\x00\x00\x00\x44\x00\x00\x00\x00\x00\x00\x00\x00", []byte{0x43, 0x44}, false},
		{"br_table", "\x0e\x02\x00\x01\x02\x1a", []byte{0x0e, 0x1a}, false},
		{"select t", "\x1c\x01\x7f", []byte{0x1c}, false},
		{"load", "\x28\x02\x10", []byte{0x28}, false},
		{"load with memory index", "\x28\x42\x01\x10", []byte{0x28}, false},
		{"memory.fill", "\xfc\x0b\x00", []byte{0xfc}, false},
		{"memory.copy", "\xfc\x0a\x00\x00", []byte{0xfc}, false},
		{"v128.const", "\xfd\x0c" + string(make([]byte, 16)), []byte{0xfd}, false},
		{"i8x16.extract_lane_s", "\xfd\x15\x03", []byte{0xfd}, false},
		{"atomic fence", "\xfe\x03\x00", []byte{0xfe}, false},
		{"try_table", "\x1f\x40\x02\x00\x00\x00\x02\x01\x0b", []byte{0x1f, 0x0b}, false},
		{"gc prefix", "\xfb\x00", []byte{0xfb}, true},
		{"unknown 0xfc", "\xfc\x20", []byte{0xfc}, true},
		{"unknown catch", "\x1f\x40\x01\x07", []byte{0x1f}, true},
		{"truncated immediate", "\x41", []byte{0x41}, true},
		{"truncated f64", "\x44\x00", []byte{0x44}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader([]byte(tt.code))
			var ops []byte
			for r.Len() > 0 {
				ops = append(ops, r.Instr())
			}
			if (r.Err() != nil) != tt.err {
				t.Fatalf("error %v, want error %v", r.Err(), tt.err)
			}
			if r.Err() != nil && !errors.Is(r.Err(), ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", r.Err())
			}
			if !bytes.Equal(ops, tt.ops) {
				t.Errorf("ops % x, want % x", ops, tt.ops)
			}
		})
	}
}

// TestInstrFixture walks the fixture's code and finds its two loops.
func TestInstrFixture(t *testing.T) {
	t.Parallel()
	m, err := Parse(readModule(t))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.Section(SectionCode)
	loops, err := countLoops(s.Payload)
	if err != nil || loops != 2 {
		t.Errorf("%d loops, %v; want 2", loops, err)
	}
}

// countLoops walks every body of a code section payload.
func countLoops(code []byte) (int, error) {
	r := NewReader(code)
	n := r.U32()
	loops := 0
	for range n {
		size := r.U32()
		body := NewReader(r.Bytes(int(size)))
		if r.Err() != nil {
			return loops, r.Err()
		}
		body.Locals()
		for body.Len() > 0 {
			if body.Instr() == OpLoop && body.Err() == nil {
				loops++
			}
		}
		if body.Err() != nil {
			return loops, body.Err()
		}
	}
	return loops, r.Err()
}

// walk parses wasm and decodes every section the package knows, checking
// that sections tile the input.
func walk(wasm []byte) error {
	m, err := Parse(wasm)
	if err != nil {
		return err
	}
	end := len(wasm)
	for i := len(m.Sections) - 1; i >= 0; i-- {
		s := m.Sections[i]
		if s.Offset < 8 || s.Offset >= end || len(s.Payload) > end-s.Offset {
			panic("section outside the module")
		}
		if !bytes.Equal(wasm[end-len(s.Payload):end], s.Payload) {
			panic("section payload is not the end of its bytes")
		}
		end = s.Offset
	}
	if end != 8 {
		panic("sections do not start after the header")
	}
	var errs []error
	if _, err := m.Imports(); err != nil {
		errs = append(errs, err)
	}
	if _, err := m.Exports(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := m.FunctionCount(); err != nil {
		errs = append(errs, err)
	}
	if s, ok := m.Section(SectionCode); ok {
		if _, err := countLoops(s.Payload); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
