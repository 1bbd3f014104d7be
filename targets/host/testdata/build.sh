#!/usr/bin/env bash
# Rebuilds the committed Wasm fixtures of targets/host from their sources:
# every x.wat becomes x.wasm with wabt's wat2wasm. (The Go guests are built
# by the tests themselves, into a temporary directory, with the Go
# toolchain's build cache.)
set -euo pipefail
cd "$(dirname "$0")"
for f in *.wat; do
  wat2wasm "$f" -o "${f%.wat}.wasm"
done
