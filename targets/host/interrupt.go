package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
)

// Deadlines without wazero's CloseOnContextDone.
//
// wazero stops a running guest only when the runtime is configured with
// CloseOnContextDone, and then its compiled code leaves native code for Go at
// every loop header to ask whether the module was closed, and every call
// starts a goroutine watching the context. Go guests (whose functions each
// begin with a loop) ran several times slower for it.
//
// Instead, instrument rewrites a module before it is compiled: it adds one
// mutable i32 global, exported as interruptExport, and at the start of every
// function and of every loop body the check
//
//	global.get $interrupt  if  unreachable  end
//
// A load, a compare and a branch in native code. The host arms a request by
// registering a context.AfterFunc that sets the global to 1 when the request's
// context ends (deadline, client gone, response over its limit); the guest
// then traps at its next loop iteration or call, exactly where wazero's own
// check would have stopped it. Instances that were interrupted are never
// reused. The global is appended after every existing one, so no code written
// before the rewrite can read or write it.
//
// Modules the rewriter does not understand (a start section, the GC
// proposal's instructions, an export name clash) and platforms without
// wazero's compiler fall back to an engine with CloseOnContextDone.

// interruptExport names the added global.
const interruptExport = "ferry:interrupt"

// errNotInstrumentable means a module is run with wazero's own termination
// checks instead.
var errNotInstrumentable = errors.New("module cannot be instrumented")

// compilerSupported reports whether wazero uses its compiler here (as
// wazero.NewRuntimeConfig decides); elsewhere the interpreter runs guests and
// the instrumented global would be read from Go concurrently with the
// watchdog's write, so the safe engine is used.
func compilerSupported() bool {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		switch runtime.GOOS {
		case "linux", "darwin", "freebsd", "netbsd", "windows":
			return true
		}
	}
	return false
}

// appendCheck appends the interrupt check on global to b.
func appendCheck(b []byte, global uint32) []byte {
	b = append(b, 0x23) // global.get
	b = binary.AppendUvarint(b, uint64(global))
	return append(b, 0x04, 0x40, 0x00, 0x0B) // if (empty) unreachable end
}

// Section ids and their required order.
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secCode      = 10
	secDataCount = 12
	secTag       = 13
)

func sectionRank(id byte) int {
	switch id {
	case 13:
		return 6 // tag: between memory and global
	case 6, 7, 8, 9:
		return int(id) + 1
	case 12:
		return 11 // data count: before code
	case 10:
		return 12
	case 11:
		return 13
	}
	return int(id) // 1..5
}

// instrument returns a copy of the module with the interrupt global and
// checks added (see above).
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a core wasm module", errNotInstrumentable)
	}
	type section struct {
		id      byte
		payload []byte
	}
	var secs []section
	for r := (reader{b: wasm, i: 8}); r.i < len(r.b); {
		id := r.byte()
		n := r.u32()
		p := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errNotInstrumentable, id, r.err)
		}
		secs = append(secs, section{id, p})
	}

	var importedGlobals, definedGlobals uint32
	hasGlobal, hasExport := false, false
	for _, s := range secs {
		switch s.id {
		case secStart:
			return nil, fmt.Errorf("%w: start section", errNotInstrumentable)
		case secImport:
			n, err := countGlobalImports(s.payload)
			if err != nil {
				return nil, err
			}
			importedGlobals = n
		case secGlobal:
			r := reader{b: s.payload}
			definedGlobals = r.u32()
			hasGlobal = true
			if r.err != nil {
				return nil, fmt.Errorf("%w: global section: %v", errNotInstrumentable, r.err)
			}
		case secExport:
			hasExport = true
			if err := checkExportNames(s.payload); err != nil {
				return nil, err
			}
		}
	}
	idx := importedGlobals + definedGlobals

	newGlobal := []byte{0x7F, 0x01, 0x41, 0x00, 0x0B} // mut i32 = i32.const 0
	newExport := binary.AppendUvarint(nil, uint64(len(interruptExport)))
	newExport = append(newExport, interruptExport...)
	newExport = append(newExport, 0x03) // global
	newExport = binary.AppendUvarint(newExport, uint64(idx))

	out := make([]byte, 0, len(wasm)+len(wasm)/16+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, p []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	// addMissing emits the global and export sections the module lacks,
	// before the first section that must follow them.
	addMissing := func(beforeRank int) {
		if !hasGlobal && beforeRank > sectionRank(secGlobal) {
			emit(secGlobal, append([]byte{1}, newGlobal...))
			hasGlobal = true
		}
		if !hasExport && beforeRank > sectionRank(secExport) {
			emit(secExport, append([]byte{1}, newExport...))
			hasExport = true
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			addMissing(sectionRank(s.id))
		}
		switch s.id {
		case secGlobal:
			r := reader{b: s.payload}
			n := r.u32()
			p := binary.AppendUvarint(nil, uint64(n)+1)
			p = append(p, s.payload[r.i:]...)
			emit(s.id, append(p, newGlobal...))
		case secExport:
			r := reader{b: s.payload}
			n := r.u32()
			p := binary.AppendUvarint(nil, uint64(n)+1)
			p = append(p, s.payload[r.i:]...)
			emit(s.id, append(p, newExport...))
		case secCode:
			p, err := instrumentCode(s.payload, idx)
			if err != nil {
				return nil, err
			}
			emit(s.id, p)
		default:
			emit(s.id, s.payload)
		}
	}
	addMissing(1 << 30)
	return out, nil
}

// countGlobalImports returns how many globals the import section imports.
func countGlobalImports(p []byte) (uint32, error) {
	r := reader{b: p}
	n := r.u32()
	var globals uint32
	for range n {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func
			r.u32()
		case 0x01: // table
			r.refType()
			r.limits()
		case 0x02: // memory
			r.limits()
		case 0x03: // global
			r.valType()
			r.byte()
			globals++
		case 0x04: // tag
			r.byte()
			r.u32()
		default:
			return 0, fmt.Errorf("%w: import kind %d", errNotInstrumentable, kind)
		}
		if r.err != nil {
			break
		}
	}
	if r.err != nil {
		return 0, fmt.Errorf("%w: import section: %v", errNotInstrumentable, r.err)
	}
	return globals, nil
}

func checkExportNames(p []byte) error {
	r := reader{b: p}
	n := r.u32()
	for range n {
		if r.name() == interruptExport {
			return fmt.Errorf("%w: the module already exports %q", errNotInstrumentable, interruptExport)
		}
		r.byte()
		r.u32()
		if r.err != nil {
			break
		}
	}
	if r.err != nil {
		return fmt.Errorf("%w: export section: %v", errNotInstrumentable, r.err)
	}
	return nil
}

// instrumentCode rewrites the code section: each body gets the check after
// its locals and after every loop's block type.
func instrumentCode(p []byte, global uint32) ([]byte, error) {
	r := reader{b: p}
	n := r.u32()
	out := binary.AppendUvarint(make([]byte, 0, len(p)+len(p)/8+16), uint64(n))
	var body []byte
	for f := range n {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errNotInstrumentable, f, r.err)
		}
		var err error
		body, err = instrumentBody(body[:0], code, global)
		if err != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errNotInstrumentable, f, err)
		}
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.i != len(p) {
		return nil, fmt.Errorf("%w: trailing bytes in the code section", errNotInstrumentable)
	}
	return out, nil
}

func instrumentBody(out, code []byte, global uint32) ([]byte, error) {
	r := reader{b: code}
	groups := r.u32()
	for range groups {
		r.u32()
		r.valType()
		if r.err != nil {
			return nil, r.err
		}
	}
	out = append(out, code[:r.i]...)
	out = appendCheck(out, global)
	for r.i < len(r.b) {
		start := r.i
		loop := r.instr()
		if r.err != nil {
			return nil, fmt.Errorf("at offset %d: %v", start, r.err)
		}
		out = append(out, code[start:r.i]...)
		if loop {
			out = appendCheck(out, global)
		}
	}
	return out, nil
}

// reader decodes the parts of the binary format the rewriter needs. The
// first error sticks; later reads return zero values.
type reader struct {
	b   []byte
	i   int
	err error
}

var errShort = errors.New("unexpected end")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.i = len(r.b)
}

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.i {
		r.fail(errShort)
		return nil
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p
}

// leb skips a LEB128 number of at most max bytes and returns its low 64
// bits (meaningful for unsigned numbers).
func (r *reader) leb(max int) uint64 {
	var v uint64
	for k := 0; k < max; k++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if k < 10 {
			v |= uint64(c&0x7F) << (7 * k)
		}
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("LEB128 number too long"))
	return 0
}

func (r *reader) u32() uint32 { return uint32(r.leb(5)) }

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

// heapType skips a heap type (an abstract one-byte type or an s33 index).
func (r *reader) heapType() { r.leb(5) }

func (r *reader) refType() {
	switch r.byte() {
	case 0x63, 0x64: // (ref null ht), (ref ht)
		r.heapType()
	}
}

func (r *reader) valType() {
	switch r.byte() {
	case 0x63, 0x64:
		r.heapType()
	}
}

func (r *reader) limits() {
	flags := r.byte()
	r.leb(10)
	if flags&1 != 0 {
		r.leb(10)
	}
}

func (r *reader) blockType() {
	if r.i >= len(r.b) {
		r.fail(errShort)
		return
	}
	switch c := r.b[r.i]; c {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		r.i++
	case 0x63, 0x64:
		r.i++
		r.heapType()
	default:
		r.leb(5) // s33 type index
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb(10)
}

// instr skips one instruction and reports whether it was a loop.
func (r *reader) instr() (loop bool) {
	op := r.byte()
	switch {
	case op == 0x03: // loop
		r.blockType()
		return true
	case op == 0x02, op == 0x04, op == 0x06: // block, if, try
		r.blockType()
	case op == 0x07, op == 0x08, op == 0x09, op == 0x18, // catch, throw, rethrow, delegate
		op == 0x0C, op == 0x0D, op == 0x10, op == 0x12, // br, br_if, call, return_call
		op == 0x14, op == 0x15, // call_ref, return_call_ref
		op >= 0x20 && op <= 0x26, // local.*, global.*, table.get/set
		op == 0x3F, op == 0x40,   // memory.size, memory.grow
		op == 0xD2, op == 0xD5, op == 0xD6: // ref.func, br_on_null, br_on_non_null
		r.u32()
	case op == 0x0E: // br_table
		n := r.u32()
		for k := uint32(0); k <= n && r.err == nil; k++ {
			r.u32()
		}
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1C: // select t*
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			r.valType()
		}
	case op == 0x1F: // try_table
		r.blockType()
		n := r.u32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			switch r.byte() {
			case 0x00, 0x01:
				r.u32()
				r.u32()
			case 0x02, 0x03:
				r.u32()
			default:
				r.fail(errors.New("unknown catch kind"))
			}
		}
	case op >= 0x28 && op <= 0x3E: // loads and stores
		r.memarg()
	case op == 0x41: // i32.const
		r.leb(5)
	case op == 0x42: // i64.const
		r.leb(10)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xD0: // ref.null
		r.heapType()
	case op == 0xFC:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
			r.u32()
		default:
			r.fail(fmt.Errorf("unknown instruction 0xFC %d", sub))
		}
	case op == 0xFD:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.memarg()
		case sub == 12, sub == 13:
			r.bytes(16)
		case sub >= 21 && sub <= 34:
			r.byte()
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.byte()
		}
	case op == 0xFE:
		if sub := r.u32(); sub == 0x03 {
			r.byte()
		} else {
			r.memarg()
		}
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0A, op == 0x0B, op == 0x0F,
		op == 0x19, op == 0x1A, op == 0x1B, op >= 0x45 && op <= 0xC4,
		op == 0xD1, op == 0xD3, op == 0xD4:
	default:
		r.fail(fmt.Errorf("unknown opcode 0x%02X", op))
	}
	return false
}
