package host

import (
	"math/bits"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memories are recycled: a WAGI request instantiates a fresh module,
// and allocating (and the GC later scanning for) a new 64 KiB+ buffer every
// time costs more than running a small guest. Memories are kept with their
// buffer per power-of-two size class and zeroed when they come back, so a
// guest always starts from zeroed memory as Wasm requires.

const (
	minMemClass = 16 // 64 KiB
	maxMemClass = 24 // 16 MiB; larger memories are not pooled
)

// memPools hold *pooledMem whose buffer has a capacity of exactly 1<<class
// and is zeroed.
var memPools [maxMemClass + 1]sync.Pool

// memClass returns the size class holding n bytes.
func memClass(n uint64) int {
	if n <= 1<<minMemClass {
		return minMemClass
	}
	return bits.Len64(n - 1)
}

// getMem returns a zeroed buffer of length n.
func getMem(n uint64) []byte {
	c := memClass(n)
	if c <= maxMemClass {
		if m, ok := memPools[c].Get().(*pooledMem); ok {
			b := m.buf[:n]
			m.buf = nil
			memObjs.Put(m)
			return b
		}
		return make([]byte, n, 1<<c)
	}
	return make([]byte, n)
}

// memObjs holds *pooledMem without a buffer.
var memObjs = sync.Pool{New: func() any { return new(pooledMem) }}

// memAllocator implements experimental.MemoryAllocator over the pools.
type memAllocator struct{}

// Allocate returns a memory that takes its first buffer from the pool of
// the initial size's class (the buffer itself is handed out by Reallocate).
func (memAllocator) Allocate(capacity, _ uint64) experimental.LinearMemory {
	if c := memClass(capacity); capacity > 0 && c <= maxMemClass {
		if m, ok := memPools[c].Get().(*pooledMem); ok {
			return m
		}
	}
	return memObjs.Get().(*pooledMem)
}

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

// Free zeroes the memory and returns it, with its buffer, to its pool.
func (m *pooledMem) Free() {
	b := m.buf
	c := memClass(uint64(cap(b)))
	if b == nil || c > maxMemClass || cap(b) != 1<<c {
		m.buf = nil
		memObjs.Put(m)
		return
	}
	clear(b) // the rest of the capacity was never handed out, or was zeroed already
	m.buf = b[:0]
	memPools[c].Put(m)
}

// putMem zeroes a buffer replaced by a larger one and pools it.
func putMem(b []byte) {
	m := memObjs.Get().(*pooledMem)
	m.buf = b
	m.Free()
}
