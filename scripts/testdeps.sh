#!/usr/bin/env bash
# testdeps.sh: install the system packages ferry's tests need, once.
# Idempotent: does nothing when every tool is already on PATH.
#   qemu-user-static  qemu-aarch64-static / qemu-arm-static run the arm64 and
#                     armv7 ferry-host binaries (cmd/ferry-host TestQEMU)
#   wabt              wat2wasm rebuilds the committed WAT fixtures (make testdata)
set -euo pipefail
missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 && command -v qemu-arm-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v wat2wasm >/dev/null 2>&1 || missing+=(wabt)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "testdeps: installing ${missing[*]}" >&2
sudo=
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
