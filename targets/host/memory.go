package host

import (
	"math/bits"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memories are recycled: a WAGI request instantiates a fresh module,
// and allocating (and the GC later scanning for) a new 64 KiB+ buffer every
// time costs more than running a small guest. Buffers are kept per
// power-of-two size class and zeroed when they come back, so a guest always
// starts from zeroed memory as Wasm requires.

const (
	minMemClass = 16 // 64 KiB
	maxMemClass = 24 // 16 MiB; larger memories are not pooled
)

var memPools [maxMemClass + 1]sync.Pool

// memClass returns the size class holding n bytes.
func memClass(n uint64) int {
	if n <= 1<<minMemClass {
		return minMemClass
	}
	return bits.Len64(n - 1)
}

func getMem(n uint64) []byte {
	c := memClass(n)
	if c <= maxMemClass {
		if b, ok := memPools[c].Get().(*[]byte); ok {
			return (*b)[:n]
		}
		return make([]byte, n, 1<<c)
	}
	return make([]byte, n)
}

func putMem(b []byte) {
	c := memClass(uint64(cap(b)))
	if c > maxMemClass || cap(b) != 1<<c {
		return
	}
	clear(b[:len(b)]) // the rest of the capacity was never handed out, or was zeroed already
	b = b[:0]
	memPools[c].Put(&b)
}

// memAllocator implements experimental.MemoryAllocator over the pools.
type memAllocator struct{}

func (memAllocator) Allocate(_, _ uint64) experimental.LinearMemory { return &pooledMem{} }

type pooledMem struct{ buf []byte }

// Reallocate grows the memory to size bytes, keeping its contents.
func (m *pooledMem) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size] // bytes past the old length are still zero
		return m.buf
	}
	nb := getMem(size)
	copy(nb, m.buf)
	if m.buf != nil {
		putMem(m.buf)
	}
	m.buf = nb
	return m.buf
}

// Free returns the memory to its pool.
func (m *pooledMem) Free() {
	if m.buf != nil {
		putMem(m.buf)
		m.buf = nil
	}
}
