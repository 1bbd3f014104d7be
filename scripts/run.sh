#!/usr/bin/env bash
# make run: ferry's main job on the embedded default. `ferry up examples`
# starts an embedded OCI registry, a ferry-host and an agent that watches
# this git repository's examples/ folder; every commit there is built,
# signed, pushed and served within about a second. Ctrl-C stops it; state
# stays in .ferry/up at the repository's root (git-ignored), so the next run
# serves at once.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./bin/ferry up "${@:-examples}"
