#!/usr/bin/env bash
# The test command (README, .ci/run): set up, lint, type-check, then every suite: unit, integration (real
# redis-server and workers of every pool), and the whole stack under Docker with a real browser.
# A Docker engine is started when none runs (and stopped again, by pid, at the end); where none can be had,
# the stack tests skip and say why. Extra arguments go to pytest (e.g. scripts/test.sh -x tests/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

started_engine=0
if ! docker info >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  if .ci/docker.sh engine-up; then started_engine=1; else echo "test.sh: no Docker engine; stack tests will skip" >&2; fi
fi
cleanup() { if ((started_engine)); then .ci/docker.sh engine-down; fi; }
trap cleanup EXIT
if docker info >/dev/null 2>&1; then .ci/docker.sh compose-install >/dev/null; fi

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
