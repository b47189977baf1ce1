#!/usr/bin/env bash
# Switch the stack's worker to another pool, and keep it switched: the choice goes into .env (which every
# later `docker compose` command reads), then the worker is recreated on it and Flower is told at once.
#
#   scripts/pool.sh gevent        # or prefork, threads, solo
#   scripts/pool.sh               # say which pool .env holds now
#
# A pool that does not exist is refused with the worker's own one-line reason, and .env is left as it was.
# Compose's own variables are honoured (COMPOSE_PROJECT_NAME, COMPOSE_FILE, and COMPOSE_ENV_FILES naming the
# one env file to keep the choice in), so a second stack, or the tests', can be switched the same way.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { echo "pool.sh: $*" >&2; }

ENV_FILE=${COMPOSE_ENV_FILES:-$ROOT/.env}
[[ -f $ENV_FILE ]] || { say "no $ENV_FILE yet: run scripts/stack-up.sh (or scripts/gen-env.sh) first"; exit 1; }
current=$(sed -n 's/^WORKER_POOL=//p' "$ENV_FILE" | tail -n 1)
if (($# == 0)); then
  echo "${current:-prefork}"; exit 0
fi
pool=$1
python=.venv/bin/python
[[ -x $python ]] || python=python3
# The worker's own check (the same one the stack runs before any worker): the reason, or nothing.
if ! WORKER_POOL=$pool REDIS_URL=redis://127.0.0.1:6379/0 PYTHONPATH=$ROOT "$python" -m worker --validate >/dev/null 2>"${TMPDIR:-/tmp}/pool.sh.err"; then
  say "$(grep -m1 'error:' "${TMPDIR:-/tmp}/pool.sh.err" | sed 's/^.*error: //')"; exit 2
fi
if grep -q '^WORKER_POOL=' "$ENV_FILE"; then
  sed -i "s/^WORKER_POOL=.*/WORKER_POOL=$pool/" "$ENV_FILE"
else
  echo "WORKER_POOL=$pool" >>"$ENV_FILE"
fi
say "WORKER_POOL=$pool is in $(basename "$ENV_FILE") (was ${current:-prefork}); recreating the worker"
docker compose up -d --wait worker
# Flower learns the new worker from its next inspect: ask for one now, so the first visit shows it.
flower=$(docker compose port flower 5555)
user=$(sed -n 's/^FLOWER_USER=//p' "$ENV_FILE"); password=$(sed -n 's/^FLOWER_PASSWORD=//p' "$ENV_FILE")
FLOWER_ADDRESS=$flower FLOWER_USER=${user:-admin} FLOWER_PASSWORD=$password "$python" - <<'PY' \
  || say "Flower did not answer; it will show the worker at its next refresh"
import base64, os, urllib.request
address, user, password = (os.environ[k] for k in ("FLOWER_ADDRESS", "FLOWER_USER", "FLOWER_PASSWORD"))
request = urllib.request.Request(f"http://{address}/api/workers?refresh=1")
request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
urllib.request.urlopen(request, timeout=15).read()
PY
say "the worker runs the $pool pool; Flower (http://$flower, Workers page) names it $pool@<container>"
