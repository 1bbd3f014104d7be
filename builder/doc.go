// Package builder turns a component of an app into checked WebAssembly bytes.
//
// A [Component] is one of three kinds: a Go package built with
// GOOS=wasip1 GOARCH=wasm ([KindGo]), a shell command that writes a .wasm
// file ([KindCommand]), or a prebuilt .wasm file ([KindWasm]). A [Builder]
// builds many components in parallel and checks every result with wazero
// before it leaves the package: the bytes must be a valid module, import only
// what ferry-host offers (see package targets/host/abi), and export what its
// executor ("wagi" or "reactor") runs.
//
// # Cache
//
// Every build is keyed by a SHA-256 over all of its inputs: the source files,
// the build settings (kind, executor, flags, declared environment, command)
// and the toolchain version, plus a format version of the builder itself.
// The checked output is stored in a content-addressed cache as <key>.wasm
// with a <key>.json record of its digest; both are written atomically (temp
// file, then rename) and the digest is verified on every read, so a corrupt
// entry is rebuilt rather than used. An unchanged component is never rebuilt.
//
// Keys use paths relative to the module root (Go) or the work directory
// (commands), never absolute paths, so two checkouts of the same commit share
// cache entries.
//
// For a Go component the key does not run `go list` (100–300 ms per
// package): the builder reads the package directory and follows its imports
// itself. Each package within the module (or within a module replaced by a
// local directory in go.mod) contributes all of its non-test .go, .s, .S, .h
// and .syso files, regardless of build constraints; a package with a
// //go:embed directive contributes every file below its directory. go.mod,
// go.sum and vendor/modules.txt pin everything outside the module. This is a
// superset of what `go build` reads, so a change can cause an unneeded
// rebuild but never a stale result. See RATIONALE.md.
//
// # Isolation
//
// A build runs code from the repository (a build command; for Go, the
// declared Env can name a -toolexec), so no build runs in the checkout or
// with the builder's environment. Each Go build and command runs in a
// scratch copy of the component's source tree below Options.WorkDir, with
// PATH, HOME and TMPDIR inside the scratch directory, the Go settings and
// the declared Env only, and, when Options.User names another account, as
// that uid and gid: it then cannot read the builder's /proc/<pid>/environ,
// its memory or its 0600 files. The output is read back through an
// os.Root and must be a regular file (owned by the build user). The build
// user's Go caches persist in WorkDir/u<uid>. See RATIONALE.md in the
// repository root.
//
// # Reproducibility
//
// Go builds use -trimpath, -buildvcs=false and -ldflags="-s -w -buildid=",
// a clean environment (GOENV=off, GOWORK=off, GOTOOLCHAIN=local unless the
// parent sets GOTOOLCHAIN) and fixed GOOS/GOARCH/CGO_ENABLED, so the same
// sources give the same digest in any directory and on any machine with the
// same toolchain version.
package builder
