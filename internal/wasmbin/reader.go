package wasmbin

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error of this package: the input is not
// a well-formed WebAssembly binary (or not the part of one that was asked
// for). Retrying cannot help.
var ErrMalformed = errors.New("malformed wasm binary")

var (
	errShort = fmt.Errorf("%w: unexpected end", ErrMalformed)
	errLEB   = fmt.Errorf("%w: LEB128 number too long", ErrMalformed)
	errRange = fmt.Errorf("%w: LEB128 number out of range", ErrMalformed)
)

// Reader decodes a byte slice from the front. The first error sticks: it
// moves the Reader to the end, and every later read returns a zero value,
// so a caller may read several fields and check [Reader.Err] once. The zero
// Reader is at the end of an empty input.
type Reader struct {
	b   []byte
	i   int
	err error
}

// NewReader returns a Reader at the start of b. It does not copy b; slices
// it returns share b's memory.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err returns the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Offset returns how many bytes have been read.
func (r *Reader) Offset() int { return r.i }

// Len returns how many bytes are left.
func (r *Reader) Len() int { return len(r.b) - r.i }

// Rest returns the bytes not read yet (sharing the input's memory).
func (r *Reader) Rest() []byte { return r.b[r.i:] }

// Fail records err as the Reader's error (unless there is one already) and
// moves it to the end.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.i = len(r.b)
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.i >= len(r.b) {
		r.Fail(errShort)
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// Bytes reads n bytes; a negative n or one past the end is an error.
func (r *Reader) Bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.i {
		r.Fail(errShort)
		return nil
	}
	p := r.b[r.i : r.i+n : r.i+n]
	r.i += n
	return p
}

// leb reads a LEB128 number of at most max bytes and returns its low 64
// bits (the value, for an unsigned number). It does not check the unused
// bits of the last byte.
func (r *Reader) leb(max int) uint64 {
	var v uint64
	for k := 0; k < max; k++ {
		c := r.Byte()
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
	r.Fail(errLEB)
	return 0
}

// U32 reads an unsigned 32-bit LEB128 number (at most 5 bytes, the value
// below 2³²).
func (r *Reader) U32() uint32 {
	// The common case, one byte, without the loop.
	if r.i < len(r.b) && r.b[r.i] < 0x80 {
		r.i++
		return uint32(r.b[r.i-1])
	}
	start := r.i
	v := r.leb(5)
	if r.err == nil && r.i-start == 5 && r.b[r.i-1]&0x70 != 0 {
		r.Fail(errRange)
		return 0
	}
	return uint32(v)
}

// U64 reads an unsigned 64-bit LEB128 number (at most 10 bytes, the value
// below 2⁶⁴).
func (r *Reader) U64() uint64 {
	start := r.i
	v := r.leb(10)
	if r.err == nil && r.i-start == 10 && r.b[r.i-1]&0x7E != 0 {
		r.Fail(errRange)
		return 0
	}
	return v
}

// SkipS32 skips a signed 32-bit LEB128 number (an i32.const immediate).
func (r *Reader) SkipS32() { r.leb(5) }

// SkipS64 skips a signed 64-bit LEB128 number (an i64.const immediate).
func (r *Reader) SkipS64() { r.leb(10) }

// Name reads a name: a length, then that many bytes. It does not check
// that they are UTF-8.
func (r *Reader) Name() string {
	n := r.U32()
	return string(r.Bytes(int(n)))
}

// HeapType skips a heap type (an abstract one-byte type or an s33 type
// index).
func (r *Reader) HeapType() { r.leb(5) }

// ValType reads a value type and returns its first byte (0x7F i32, 0x7E
// i64, 0x7D f32, 0x7C f64, 0x7B v128, 0x70 funcref, 0x6F externref, 0x63
// and 0x64 a typed reference whose heap type follows and is skipped).
func (r *Reader) ValType() byte {
	c := r.Byte()
	switch c {
	case 0x63, 0x64: // (ref null ht), (ref ht)
		r.HeapType()
	}
	return c
}

// RefType reads a reference type, as [Reader.ValType] does.
func (r *Reader) RefType() byte { return r.ValType() }

// Limits are the limits of a memory or table.
type Limits struct {
	// Flags is the limits' first byte: bit 0 a maximum is present, bit 1
	// shared (threads), bit 2 64-bit (memory64).
	Flags byte
	// Min is the minimum size, Max the maximum (0 when absent).
	Min, Max uint64
}

// Limits reads the limits of a memory or table.
func (r *Reader) Limits() Limits {
	l := Limits{Flags: r.Byte()}
	l.Min = r.U64()
	if l.Flags&1 != 0 {
		l.Max = r.U64()
	}
	return l
}

// BlockType skips the block type of block, loop, if, try and try_table:
// empty (0x40), a value type, or an s33 type index.
func (r *Reader) BlockType() {
	if r.i >= len(r.b) {
		r.Fail(errShort)
		return
	}
	switch c := r.b[r.i]; c {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		r.i++
	case 0x63, 0x64:
		r.i++
		r.HeapType()
	default:
		r.leb(5) // s33 type index
	}
}

// Memarg skips the memory argument of a load or store: alignment (with a
// memory index after it when bit 6 is set, multi-memory) and offset.
func (r *Reader) Memarg() {
	align := r.U32()
	if align&0x40 != 0 {
		r.U32()
	}
	r.leb(10)
}

// Locals skips the local declarations at the start of a function body (a
// count of groups, each a count and a value type), leaving the Reader at
// the body's first instruction.
func (r *Reader) Locals() {
	groups := r.U32()
	for k := uint32(0); k < groups && r.err == nil; k++ {
		r.U32()
		r.ValType()
	}
}
