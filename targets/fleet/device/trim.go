package device

import "runtime/debug"

// Trimming memory.
//
// An idle device should hold in memory only what it uses. Two things make
// its resident set larger than that after start-up or a deploy:
//
//   - The Go heap keeps the pages a deploy freed (pulling, verifying and
//     compiling a module allocate tens of megabytes that are garbage
//     afterwards) until the background scavenger returns them, minutes
//     later. debug.FreeOSMemory collects and returns them at once.
//   - Start-up runs the init code of every package linked into the binary
//     (the signature verifier's dependencies are most of it), and a deploy
//     runs the registry client, the verifier and wazero's compiler once. Each
//     of those page faults maps the 64 KiB of the executable around it that
//     is in the page cache (the kernel's fault-around), so after start-up
//     nearly the whole text and read-only data of the binary — measured, 22
//     of a 31 MiB resident set — count as resident although most of it never
//     runs again. MADV_PAGEOUT on the executable's read-only mappings drops
//     them from the resident set; whatever runs next faults its pages back
//     in. They are clean file pages: nothing is written, and the kernel
//     would reclaim them the same way under memory pressure.
//
// trimMemory does both; Start calls it once the recorded apps are restored
// and the device loop after every round that changed an app (unless
// Config.NoTrim). It is a no-op where MADV_PAGEOUT does not exist (before
// Linux 5.4, other systems) except for FreeOSMemory.
func trimMemory() {
	debug.FreeOSMemory()
	pageOutExecutable()
}
