#!/usr/bin/env bash
# make check: cross-build ferry-host for linux/amd64, arm64 and arm/v7, and
# every Go example guest for wasip1.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
if [ -d cmd/ferry-host ]; then
  for plat in amd64 arm64 arm; do
    out=bin/ferry-host-linux-$plat
    [ $plat = arm ] && out=bin/ferry-host-linux-armv7
    echo "check: ferry-host linux/$plat -> $out"
    GOOS=linux GOARCH=$plat GOARM=7 CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o $out ./cmd/ferry-host
  done
else
  echo "check: cmd/ferry-host not built yet"
fi
for d in $(git ls-files 'examples/*/*.go' | xargs -r -n1 dirname | sort -u); do
  mode=
  grep -qs 'executor *= *"reactor"' "$d"/*.hcl && mode=-buildmode=c-shared
  echo "check: $d -> wasip1/wasm $mode"
  GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false $mode -o /dev/null "./$d"
done
echo "check: ok"
