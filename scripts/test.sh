#!/usr/bin/env bash
# The test command (README, .ci/run): set up, lint, type-check, then every test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not stack" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
