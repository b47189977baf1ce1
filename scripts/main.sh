#!/usr/bin/env bash
# The main job: set up, then run the product. Until the compose stack lands this is the embedded default
# (local redis-server + one worker + demo tasks).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/local-demo.sh
