#!/bin/sh
# Rebuilds the committed .wasm fixtures from their .wat sources (needs wabt).
set -eu
cd "$(dirname "$0")"
for f in *.wat; do
	wat2wasm "$f" -o "${f%.wat}.wasm"
done
