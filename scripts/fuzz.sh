#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after another, each
# for FUZZTIME (default 5m). Targets are found by construction: every
# `func FuzzX(f *testing.F)` in a *_test.go file. New inputs that crash are
# written by `go test` to the package's testdata/fuzz/FuzzX/; commit them
# with the fix as regression seeds.
#
#   make fuzz                      # every target, 5 minutes each
#   FUZZTIME=60s make fuzz         # shorter
#   FUZZ='FuzzWebhook|FuzzPlanFile' FUZZTIME=30s ./scripts/fuzz.sh   # some
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5m}
FUZZ=${FUZZ:-.}
# Workers per target; the default is every core.
FUZZ_PARALLEL=${FUZZ_PARALLEL:-$(nproc 2>/dev/null || echo 2)}

mapfile -t targets < <( (git ls-files "*_test.go" 2>/dev/null || find . -name "*_test.go" -not -path "./.git/*" | sed "s|^\./||") | sort)
failed=()
ran=0
for file in "${targets[@]}"; do
  pkg="./$(dirname "$file")"
  for name in $(grep -oE '^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\)' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/'); do
    if ! grep -qE "$FUZZ" <<<"$name"; then
      continue
    fi
    ran=$((ran + 1))
    echo "== $pkg $name for $FUZZTIME"
    if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZ_PARALLEL" "$pkg"; then
      failed+=("$pkg $name")
    fi
  done
done
echo "== $ran fuzz targets, ${#failed[@]} failed"
for f in "${failed[@]}"; do
  echo "FAIL $f (the crashing input is under $(echo "$f" | cut -d' ' -f1)/testdata/fuzz/)"
done
[ "${#failed[@]}" -eq 0 ]
