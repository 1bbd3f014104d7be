// Package wasmbin reads the WebAssembly core binary format: the module
// header, its sections, the import and export sections, and the
// instructions of a function body. It is the one reader of Wasm binaries
// in ferry: the builder lists a module's imports with it, and the host's
// rewriter (targets/host's instrument) walks sections and code with it.
//
// It reads what it is given and validates only what it must to stay in
// bounds: a module it accepts may still be invalid (wazero validates
// fully). It is written for hostile input: every length is checked against
// what is left, every count is bounded by the bytes that would hold it, no
// input makes it panic or allocate more than a small multiple of its
// size, and malformed input gives an error wrapping [ErrMalformed].
//
// [Parse] splits a module into [Section]s; [Module.Imports] and
// [Module.Exports] decode those sections; [Vector] reads the count that
// starts most sections; [Reader] decodes the primitive encodings (LEB128
// numbers, names, value types, limits) and skips instructions
// ([Reader.Instr]) for callers that need more.
//
// It imports only the standard library, and keeps no state: everything is
// safe for concurrent use on distinct Readers.
package wasmbin
