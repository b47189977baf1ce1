#!/usr/bin/env bash
# The embedded default where Docker is absent: a password-protected redis-server on loopback, one worker
# (pool from WORKER_POOL, default prefork), the producer demo against it, then everything stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

workdir=$(mktemp -d)
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
port=${REDIS_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
redis-server --port "$port" --bind 127.0.0.1 --requirepass "$password" --save '' --appendonly no \
  --dir "$workdir" >"$workdir/redis.log" 2>&1 &
redis_pid=$!
export REDIS_URL="redis://:${password}@127.0.0.1:${port}/0"
export WORKER_POOL=${WORKER_POOL:-prefork}
export WORKER_NAME="${WORKER_POOL}@local-demo"
.venv/bin/python -m worker >"$workdir/worker.log" 2>&1 &
worker_pid=$!
cleanup() {
  kill -TERM "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

for _ in $(seq 1 120); do .venv/bin/python -m worker --check 2>/dev/null && break; sleep 0.5; done
.venv/bin/python -m worker --check
echo "worker $WORKER_NAME is up on the $WORKER_POOL pool (redis on 127.0.0.1:$port)" >&2
.venv/bin/python -m producer demo
