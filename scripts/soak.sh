#!/usr/bin/env bash
# Reproduce the recorded soak run: set up .venv, then run python -m producer.soak, which starts its own redis-server
# (persistent, on a free loopback port) and two workers in .run/soak/, kills one worker and restarts Redis
# mid-run, checks the side-effect ledger, stops everything it started, and exits with the verdict.
#
#   scripts/soak.sh [--tasks N] [--seed S] [--out DIR] [any other producer.soak flag; --help lists them]
#
# Results go to bench/results/<date>/ (or DIR): soak.json and soak.md. Exit status 0 when every check
# passed, 1 when one failed (named on stderr and in soak.json), 2 for a bad flag.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
progress=raw
[[ -t 2 ]] && progress=rich

scripts/setup.sh
export COLUMNS=${COLUMNS:-160}  # rich's table width when stdout is not a terminal
exec .venv/bin/python -m producer.soak --progress "$progress" "$@"
