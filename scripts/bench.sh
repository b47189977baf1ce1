#!/usr/bin/env bash
# Reproduce the recorded benchmarks: start a local cluster (scripts/local-cluster.sh: Redis and one worker
# per pool), run `python -m producer bench` on it, stop the cluster, and exit with the bench's status.
#
#   scripts/bench.sh [--quick] [--out DIR]
#
# Results go to bench/results/<date>/ (or DIR): results.json, report.md and PNG charts. Exit status 0 when
# everything was measured, 1 when something could not be (the report lists it) or the cluster did not start.
# Speed targets are pass/fail columns in the report, not the exit status.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUN_DIR=.run/bench-cluster  # its own cluster: a running scripts/local-cluster.sh one is left alone

bench_args=()
while (($#)); do
  case $1 in
    --quick) bench_args+=(--quick); shift ;;
    --out) bench_args+=(--out "${2:?--out needs a folder}"); shift 2 ;;
    *) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
progress=raw
[[ -t 2 ]] && progress=rich

scripts/setup.sh
trap 'scripts/local-cluster.sh stop --run-dir "$RUN_DIR"' EXIT
scripts/local-cluster.sh start --run-dir "$RUN_DIR"
# REDIS_URL from the environment (the CLI reads it), so the password never shows in ps.
eval "$(scripts/local-cluster.sh env --run-dir "$RUN_DIR")"
export COLUMNS=${COLUMNS:-160}  # rich's table width when stdout is not a terminal
status=0
.venv/bin/python -m producer bench --progress "$progress" "${bench_args[@]}" || status=$?
exit "$status"
