#!/usr/bin/env bash
# testtool.sh NAME — build (once) and print the path of an external tool that
# ferry's interop tests run. Builds go to $FERRY_TEST_CACHE (default
# $HOME/.cache/ferry-test) and are reused on later runs; a lock makes
# concurrent callers wait for one build instead of racing.
#
# Known names:
#   cosign-v2.6.5 cosign-v3.1.3   the real cosign CLI
#   oras-v1.3.6                   the oras CLI
#   registry-v3.1.2               CNCF Distribution as a separate process
set -euo pipefail

name=${1:?usage: testtool.sh NAME}
cache=${FERRY_TEST_CACHE:-$HOME/.cache/ferry-test}
bin="$cache/bin"
mkdir -p "$bin"
out="$bin/$name"

case "$name" in
  cosign-v2.6.5)   pkg=github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 ;;
  cosign-v3.1.3)   pkg=github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 ;;
  oras-v1.3.6)     pkg=oras.land/oras/cmd/oras@v1.3.6 ;;
  registry-v3.1.2) pkg=github.com/distribution/distribution/v3/cmd/registry@v3.1.2 ;;
  *) echo "testtool.sh: unknown tool $name" >&2; exit 2 ;;
esac

exec 9>"$bin/.$name.lock"
flock 9
if [ ! -x "$out" ]; then
  echo "testtool.sh: building $name (first run only; cached in $bin)" >&2
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # go install into a private GOBIN, then move the result into place atomically.
  (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp/bin" GOTOOLCHAIN=local CGO_ENABLED=0 \
      go install -trimpath -ldflags='-s -w' "$pkg") >&2
  src=$(ls "$tmp/bin"/*)
  mv "$src" "$out.tmp" && mv "$out.tmp" "$out"
fi
echo "$out"
