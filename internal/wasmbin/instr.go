package wasmbin

import "fmt"

// Opcodes that callers of [Reader.Instr] look for.
const (
	OpLoop byte = 0x03
	OpEnd  byte = 0x0B
)

// Immediate kinds of the one-byte opcodes, for Instr.
const (
	immBad uint8 = iota
	immNone
	immBlock
	immU32
	immU32x2
	immBrTable
	immSelectT
	immTryTable
	immMemarg
	immI32
	immI64
	immF32
	immF64
	immHeapType
	immFC
	immFD
	immFE
)

// opImm gives the immediates of each one-byte opcode: WebAssembly 2.0 plus
// tail calls, exception handling (legacy and try_table), typed function
// references, threads and SIMD. The GC proposal's 0xFB prefix is not read.
var opImm = func() (t [256]uint8) {
	set := func(k uint8, ops ...int) {
		for _, op := range ops {
			t[op] = k
		}
	}
	set(immNone, 0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4)
	for op := 0x45; op <= 0xC4; op++ {
		t[op] = immNone // numeric instructions
	}
	set(immBlock, 0x02, 0x03, 0x04, 0x06) // block, loop, if, try
	set(immU32,
		0x07, 0x08, 0x09, 0x18, // catch, throw, rethrow, delegate
		0x0C, 0x0D, 0x10, 0x12, // br, br_if, call, return_call
		0x14, 0x15, // call_ref, return_call_ref
		0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, // local.*, global.*, table.get/set
		0x3F, 0x40, // memory.size, memory.grow
		0xD2, 0xD5, 0xD6) // ref.func, br_on_null, br_on_non_null
	set(immU32x2, 0x11, 0x13) // call_indirect, return_call_indirect
	set(immBrTable, 0x0E)
	set(immSelectT, 0x1C)
	set(immTryTable, 0x1F)
	for op := 0x28; op <= 0x3E; op++ {
		t[op] = immMemarg // loads and stores
	}
	set(immI32, 0x41)
	set(immI64, 0x42)
	set(immF32, 0x43)
	set(immF64, 0x44)
	set(immHeapType, 0xD0) // ref.null
	set(immFC, 0xFC)
	set(immFD, 0xFD)
	set(immFE, 0xFE)
	return t
}()

// Instr skips one instruction of a function body (its opcode and
// immediates) and returns its opcode; for the prefixed instructions (0xFC,
// 0xFD, 0xFE) that is the prefix. An opcode it does not know is an error.
// Instr does not track nesting: a body's last [OpEnd] is one instruction
// like the others.
func (r *Reader) Instr() (op byte) {
	if r.i >= len(r.b) {
		r.Fail(errShort)
		return 0
	}
	op = r.b[r.i]
	r.i++
	switch opImm[op] {
	case immNone:
	case immU32:
		r.U32()
	case immBlock:
		r.BlockType()
	case immU32x2:
		r.U32()
		r.U32()
	case immBrTable:
		n := r.U32()
		for k := uint32(0); k <= n && r.err == nil; k++ {
			r.U32()
		}
	case immSelectT:
		n := r.U32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			r.ValType()
		}
	case immTryTable:
		r.BlockType()
		n := r.U32()
		for k := uint32(0); k < n && r.err == nil; k++ {
			switch r.Byte() {
			case 0x00, 0x01:
				r.U32()
				r.U32()
			case 0x02, 0x03:
				r.U32()
			default:
				r.Fail(fmt.Errorf("%w: unknown catch kind", ErrMalformed))
			}
		}
	case immMemarg:
		r.Memarg()
	case immI32:
		r.SkipS32()
	case immI64:
		r.SkipS64()
	case immF32:
		r.Bytes(4)
	case immF64:
		r.Bytes(8)
	case immHeapType:
		r.HeapType()
	case immFC:
		switch sub := r.U32(); {
		case sub <= 7:
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.U32()
			r.U32()
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
			r.U32()
		default:
			r.Fail(fmt.Errorf("%w: unknown instruction 0xFC %d", ErrMalformed, sub))
		}
	case immFD:
		switch sub := r.U32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.Memarg()
		case sub == 12, sub == 13:
			r.Bytes(16)
		case sub >= 21 && sub <= 34:
			r.Byte()
		case sub >= 84 && sub <= 91:
			r.Memarg()
			r.Byte()
		}
	case immFE:
		if sub := r.U32(); sub == 0x03 {
			r.Byte()
		} else {
			r.Memarg()
		}
	default:
		r.Fail(fmt.Errorf("%w: unknown opcode 0x%02X", ErrMalformed, op))
	}
	return op
}
