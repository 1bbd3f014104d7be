#!/usr/bin/env bash
# Rebuild every committed Wasm fixture from its source: each *.wat beside a
# *.wasm of the same name is compiled with wat2wasm (Debian package wabt).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wat2wasm >/dev/null; then
  echo "testdata: wat2wasm not found; installing wabt" >&2
  apt-get install -y --no-install-recommends wabt >/dev/null
fi
n=0
while IFS= read -r wat; do
  wasm="${wat%.wat}.wasm"
  wat2wasm "$wat" -o "$wasm"
  n=$((n+1))
done < <(git ls-files '*.wat')
for s in $(git ls-files '*/testdata/build.sh'); do bash "$s"; done
echo "testdata: rebuilt $n WAT fixture(s)"
