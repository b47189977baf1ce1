#!/usr/bin/env bash
# The main job: set up, then run the stack (Redis, a worker, Flower, the producer demo) under Docker.
# Where Docker cannot be had, scripts/stack-up.sh falls back to the embedded default: a local redis-server,
# one worker and the same producer demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec scripts/stack-up.sh "$@"
