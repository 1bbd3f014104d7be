#!/usr/bin/env bash
# make bench: run ferry's benchmarks, each compared in the same run with its
# baseline (a native Go net/http handler for the runtime; goals for the rest),
# and write a report with the machine's state beside the figures.
#
#   BENCH_REPORT=bench/report.txt   where the report goes
#   BENCH_GOALS=bench/goals.txt     the goals each figure is compared with
#   BENCH_ONLY=REGEXP               run only the lines whose package matches
#                                   (e.g. 'builder|signer'); the goals of the
#                                   others then show as "not run"
#   BENCH_STRICT=1                  exit 1 when a goal is not met or not run
#   FERRY_BENCH_DENSITY=10000       apps in the density benchmark (default 1000)
#
# The report ends with one row per goal: benchmark, metric, goal, measured,
# met / NOT MET / not run, and whether it ran on real parts or an in-memory
# fake (internal/benchgoals). One `run` line per benchmark group below.
set -euo pipefail
cd "$(dirname "$0")/.."
report=${BENCH_REPORT:-bench/report.txt}
mkdir -p "$(dirname "$report")"
{
  echo "# ferry benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(go version)"
  echo "# $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} > "$report"
run() { # run PKG BENCH-REGEXP BENCHTIME
  if [ -n "${BENCH_ONLY:-}" ] && ! [[ $1 =~ $BENCH_ONLY ]]; then
    return 0
  fi
  echo "## $1 -bench '$2' -benchtime $3" | tee -a "$report"
  go test -run '^$' -bench "$2" -benchtime "$3" -benchmem -timeout 60m "$1" 2>&1 | tee -a "$report"
  echo >> "$report"
}
# Runtime: requests/s and latency against a native net/http handler, same run.
run ./targets/host 'BenchmarkWAGI$|BenchmarkReactor$|ReactorFloor|Handler$' 5000x
# Density, swaps under load, warm restart: each iteration is the whole job.
run ./targets/host 'Density|SwapsUnderLoad|WarmRestart|DeployGo' 1x
run ./targets/host 'NeighbourUnderSpin' 1x
run ./targets/host/control . 20x
run ./targets/fleet . 1s
# Device footprint: binary sizes per arch, idle RSS in device mode.
run ./cmd/ferry-host 'DeviceFootprint' 1x
# One 4-wave rollout to 10,000 devices speaking the real protocol (child processes).
run ./targets/fleet/controller 'FleetRollout' 1x
# ferry against kubectl apply --server-side: N apps (FERRY_BENCH_KUBE_APPS, default 100) to Ready
# on one kwok cluster, then a no-op plan.
run ./targets/kubernetes/driver 'ApplyVsKubectl' 1x
run ./builder CachedBuild 1s
run ./registry . 30x
run ./signer . 1s
run ./spec . 1s
run ./sync/plan 'PlanNoop1000|Apply100' 1s
run ./sync/agent 'Agent' 1x
run ./cmd/ferry 'UpCommitToServing' 1x
# Dashboard in headless Chromium: 1,000 apps, 10,000 devices; first render and live update.
run ./sync/agent/dashboard 'DashboardScale' 3x
goals=${BENCH_GOALS:-bench/goals.txt}
tmp=$(mktemp -d)
go build -o "$tmp/benchgoals" ./internal/benchgoals
status=0
"$tmp/benchgoals" -goals "$goals" "$report" > "$tmp/table" 2>/dev/null || status=$?
{ echo "## goals ($goals)"; cat "$tmp/table"; } | tee -a "$report"
rm -rf "$tmp"
echo "report written to $report"
if [ "${BENCH_STRICT:-}" = 1 ]; then
  exit "$status"
fi
