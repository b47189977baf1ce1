#!/usr/bin/env bash
# The scale check: 1 -> 2 -> 4 -> 8 containers of the stack's worker, two producers on this host, CPU- and
# IO-bound tasks; throughput and makespan per step, a plot, then the worker back to one container.
#
#   scripts/scale.sh [--out DIR] [-- more options of python -m producer.bench.scale]
#
# Starts the stack first if it is not up (scripts/stack-up.sh --no-demo). Results go to
# bench/results/<date>/scale/ (or DIR): scale.json, scale.md, scale.png. Compose's own variables
# (COMPOSE_PROJECT_NAME, COMPOSE_FILE, COMPOSE_ENV_FILES) pick another stack, as for scripts/pool.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { echo "scale.sh: $*" >&2; }

out=bench/results/$(date +%F)/scale
extra=()
while (($#)); do
  case $1 in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

scripts/setup.sh
ENV_FILE=${COMPOSE_ENV_FILES:-$ROOT/.env}
if ! docker compose ps --status running --services 2>/dev/null | grep -qx redis; then
  say "the stack is not up: starting it (scripts/stack-up.sh --no-demo)"
  scripts/stack-up.sh --no-demo
fi
password=$(sed -n 's/^REDIS_PASSWORD=//p' "$ENV_FILE" | tail -n 1)
address=$(docker compose port redis 6379)
# REDIS_URL from the environment (the module reads it), so the password never shows in ps.
REDIS_URL="redis://:$password@$address/0" exec .venv/bin/python -m producer.bench.scale --out "$out" "${extra[@]}"
