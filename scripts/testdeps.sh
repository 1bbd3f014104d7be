#!/usr/bin/env bash
# testdeps.sh: install the system packages ferry's tests need, once.
# Idempotent: does nothing when every tool is already on PATH.
#   qemu-user-static  qemu-aarch64-static / qemu-arm-static run the arm64 and
#                     armv7 ferry-host binaries (cmd/ferry-host TestQEMU)
#   wabt              wat2wasm rebuilds the committed WAT fixtures (make testdata)
#   openssh-server    sshd serves test git repositories over ssh on loopback
#                     (internal/gittest ServeSSH); the package's own service is
#                     not started (policy-rc.d refuses it during the install)
#   chromium          headless Chromium drives the dashboard's end-to-end tests
#                     (chromedp)
set -euo pipefail
missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 && command -v qemu-arm-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v wat2wasm >/dev/null 2>&1 || missing+=(wabt)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "testdeps: installing ${missing[*]}" >&2
sudo=
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Keep package installs from starting services (sshd on port 22): a
# policy-rc.d answering 101 is what invoke-rc.d and deb-systemd-invoke ask.
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
