#!/usr/bin/env bash
# make chaos: the long reliability suites of issue 11, one after another (so
# the soak's figures are not disturbed by the others), with the real
# binaries and services. Each suite's summary lines go to the report.
#
#   CHAOS_REPORT=chaos-report.txt   where the report goes
#   FERRY_CHAOS_TRIALS=50           SIGKILL trials of the crash suite (make test runs 5)
#   FERRY_CHAOS_SEED=N              seed of the crash suite (default: the time; logged)
#   FERRY_SOAK=10m                  how long the soak runs (empty string: skip it)
#   CHAOS_ONLY=REGEXP               run only the suites whose name matches
#                                   (fault, crash, soak)
set -euo pipefail
cd "$(dirname "$0")/.."
report=${CHAOS_REPORT:-chaos-report.txt}
export FERRY_CHAOS_TRIALS=${FERRY_CHAOS_TRIALS:-50}
export FERRY_SOAK=${FERRY_SOAK-10m}
logs=$(mktemp -d)
{
  echo "# ferry reliability suites — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(go version)"
  echo "# $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} > "$report"
status=0
suite() { # suite NAME PKG TEST-REGEXP
  if [ -n "${CHAOS_ONLY:-}" ] && ! [[ $1 =~ $CHAOS_ONLY ]]; then
    return 0
  fi
  echo "## $1: go test -run '$3' $2" | tee -a "$report"
  local start=$SECONDS
  if go test -count=1 -v -timeout 60m -run "$3" "$2" > "$logs/$1.log" 2>&1; then
    echo "ok ($((SECONDS - start)) s)" | tee -a "$report"
  else
    echo "FAILED ($((SECONDS - start)) s); log: $logs/$1.log" | tee -a "$report"
    tail -40 "$logs/$1.log" | tee -a "$report"
    status=1
  fi
  # The suites' own summary lines (t.Logf), without the file:line prefix.
  grep -E 'crash suite:|soak |: v[0-9]+ serving after|probe:|SIGKILL ' "$logs/$1.log" | sed -E 's/^ +[a-z_]+\.go:[0-9]+: /  /' | tee -a "$report" || true
  echo >> "$report"
}
suite fault ./cmd/ferry '^TestFaultRegistryAndGit$'
suite crash ./cmd/ferry '^TestChaosCrashAgentAndHost$'
if [ -n "$FERRY_SOAK" ]; then
  export FERRY_SOAK_OUT=$logs/soak-samples.tsv
  suite soak ./cmd/ferry-host '^TestSoak$'
  [ -f "$FERRY_SOAK_OUT" ] && echo "soak samples (seconds, RSS KiB, goroutines): $FERRY_SOAK_OUT" | tee -a "$report"
fi
echo "report: $report"
exit $status
