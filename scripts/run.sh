#!/usr/bin/env bash
# make run: ferry's main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "ferry: validating the example apps"
for d in examples/*/; do ./bin/ferry validate "$d"; done
cat <<'TXT'

Not built yet: the embedded default (`ferry up`: local agent + embedded
registry + ferry-host serving the examples from a local git repository).
What works today: `ferry validate`, `ferry fmt`, `ferry init`, `ferry version`.
See README.md, "Status".
TXT
