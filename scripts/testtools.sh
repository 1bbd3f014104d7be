#!/usr/bin/env bash
# testtools.sh: build every external tool ferry's tests run (the real cosign
# v2 and v3 CLIs, the oras CLI, CNCF Distribution as a process, and the
# Kubernetes control plane internal/kubetest starts: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok and kwok's stages) before
# `go test` starts, so that no package test spends its timeout building one.
# Each build is scripts/testtool.sh's: cached in $FERRY_TEST_CACHE (default
# $HOME/.cache/ferry-test), and behind its lock, so a build another process
# has started is waited for, not repeated. Tests keep calling testtool.sh
# themselves; for them it is then a cache hit.
#
#   FERRY_TESTTOOLS_JOBS=2   builds at a time (each go build uses every core)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${FERRY_TEST_CACHE:-$HOME/.cache/ferry-test}
jobs=${FERRY_TESTTOOLS_JOBS:-2}
# Longest first, so the short builds fill in beside the long ones. A+B+C is
# one job that builds A, then B, then C: the three Kubernetes commands share
# one wrapper module, and the second and third reuse the packages the first
# compiled (built side by side, they would compile them twice).
kube=kube-apiserver-v1.37.2+kube-controller-manager-v1.37.2+kube-scheduler-v1.37.2
tools=("$kube" kwok-v0.8.0 cosign-v2.6.5 cosign-v3.1.3 etcd-v3.7.3 registry-v3.1.2 oras-v1.3.6
  kwok-stages-v0.8.0.yaml)

build_one() {
  local name=$1 cache=$2 log start
  if [[ $name == *+* ]]; then
    local n
    for n in ${name//+/ }; do build_one "$n" "$cache" || return 1; done
    return 0
  fi
  if [ -e "$cache/bin/$name" ]; then
    echo "testtools: $name cached ($cache/bin)"
    return 0
  fi
  echo "testtools: building $name (cached in $cache/bin; waits if another build holds it)"
  log=$(mktemp)
  start=$SECONDS
  if ! ./scripts/testtool.sh "$name" >/dev/null 2>"$log"; then
    echo "testtools: building $name FAILED:" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "testtools: $name ready in $((SECONDS - start))s"
}
export -f build_one

printf '%s\n' "${tools[@]}" | xargs -P "$jobs" -I{} bash -c 'build_one "$1" "$2"' _ {} "$cache"
