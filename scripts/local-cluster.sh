#!/usr/bin/env bash
# A local cluster without Docker: one password-protected redis-server on loopback and one worker per pool,
# each consuming a queue named after its pool (prefork also consumes "celery"), and beside them stock
# Celery's own workers (bench/stock_app.py, events on) on queues stock-<pool>, at the same concurrency, for
# threads and gevent also with result_backend_thread_safe (stock-<pool>-safe). The benchmarks run on it.
#
#   scripts/local-cluster.sh start [--port N] [--run-dir DIR]   start (or report the one already running)
#   scripts/local-cluster.sh env   [--run-dir DIR]              print "export REDIS_URL=..." for eval
#   scripts/local-cluster.sh stop  [--run-dir DIR]              stop exactly the processes start started
#
# The run dir (default .run/local-cluster) holds the pid files, the logs, redis.conf (the password, mode
# 600) and env (REDIS_URL, mode 600). Concurrency per pool, and why:
#   prefork -c 2    one process per core: CPU work runs in parallel, more processes only add switching
#   threads -c 10   the pool's default (celery_futures/protocol/pools.py). One GIL runs Celery's ~1.3 ms of CPU per task,
#                   so a threads worker cannot keep many more than ~35 threads busy on 50 ms waits; 10
#                   keeps the ideal makespan of the IO benchmarks well above that per-task floor
#   gevent  -c 100  the pool's default: greenlets cost kilobytes, so IO concurrency can be large
#   solo            always one task at a time
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=$ROOT/.venv/bin/python
POOLS=(prefork threads gevent solo)
declare -A CONCURRENCY=([prefork]=2 [threads]=10 [gevent]=100 [solo]=1)
declare -A QUEUES=([prefork]="prefork,celery" [threads]=threads [gevent]=gevent [solo]=solo)
STOCK_WORKERS=(stock-prefork stock-threads stock-gevent stock-threads-safe stock-gevent-safe)
WORKERS=("${POOLS[@]}" "${STOCK_WORKERS[@]}")
# Celery's own default for `celery worker`; ours and stock log alike, so the bench compares like with like.
LOGLEVEL=${WORKER_LOGLEVEL:-WARNING}
CHECK_ATTEMPTS=60
STOP_SECONDS=30

say() { echo "local-cluster: $*" >&2; }

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

alive() { [[ -f $1 ]] && kill -0 "$(<"$1")" 2>/dev/null; }

node_name() { echo "$1@local-cluster"; }

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_redis() {
  local port=$1 password
  # Hex only: the password goes into REDIS_URL, where URL-special characters would break it.
  password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')
  # The password lives in a file readable by its owner only, never on a command line that ps shows.
  (umask 077 && printf 'requirepass %s\n' "$password" >"$RUN_DIR/redis.conf"
   printf 'REDIS_URL=redis://:%s@127.0.0.1:%s/0\n' "$password" "$port" >"$RUN_DIR/env")
  redis-server "$RUN_DIR/redis.conf" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN_DIR" >"$RUN_DIR/redis.log" 2>&1 &
  echo $! >"$RUN_DIR/redis.pid"
  for _ in $(seq 1 50); do
    [[ $(REDISCLI_AUTH=$password redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && return 0
    alive "$RUN_DIR/redis.pid" || break
    sleep 0.1
  done
  say "redis-server did not answer on 127.0.0.1:$port; its log:"; cat "$RUN_DIR/redis.log" >&2
  return 1
}

start_worker() {
  local pool=$1 args
  args=(--pool "$pool" --queues "${QUEUES[$pool]}" --name "$(node_name "$pool")" --loglevel "$LOGLEVEL")
  [[ $pool == solo ]] || args+=(--concurrency "${CONCURRENCY[$pool]}")
  # Its own session (process group), so stop can take a prefork worker's children down with it.
  REDIS_URL=$REDIS_URL setsid "$PYTHON" -m worker "${args[@]}" >"$RUN_DIR/worker-$pool.log" 2>&1 &
  echo $! >"$RUN_DIR/worker-$pool.pid"
}

# Stock Celery as its users start it: `celery -A <app> worker -E`, nothing of ours imported.
start_stock_worker() {
  local worker=$1 pool safe=0
  pool=${worker#stock-}
  [[ $pool == *-safe ]] && { pool=${pool%-safe}; safe=1; }
  REDIS_URL=$REDIS_URL STOCK_THREAD_SAFE_BACKEND=$safe PYTHONPATH=$ROOT/bench setsid "$PYTHON" -m celery \
    -A stock_app worker -E -P "$pool" -c "${CONCURRENCY[$pool]}" -Q "$worker" -n "$(node_name "$worker")" \
    --loglevel="$LOGLEVEL" >"$RUN_DIR/worker-$worker.log" 2>&1 &
  echo $! >"$RUN_DIR/worker-$worker.pid"
}

wait_worker() {
  local pool=$1
  for _ in $(seq 1 "$CHECK_ATTEMPTS"); do
    if REDIS_URL=$REDIS_URL WORKER_NAME=$(node_name "$pool") "$PYTHON" -m worker --check 2>/dev/null; then
      say "$(node_name "$pool") answers (queues ${QUEUES[$pool]:-$pool})"
      return 0
    fi
    alive "$RUN_DIR/worker-$pool.pid" || break
    sleep 0.5
  done
  say "worker $(node_name "$pool") did not answer; the end of its log:"
  tail -n 30 "$RUN_DIR/worker-$pool.log" >&2
  return 1
}

load_env() {
  local line
  line=$(grep '^REDIS_URL=' "$RUN_DIR/env")
  REDIS_URL=${line#REDIS_URL=}
}

running() {
  [[ -f $RUN_DIR/env ]] && alive "$RUN_DIR/redis.pid" || return 1
  local pool
  for pool in "${WORKERS[@]}"; do alive "$RUN_DIR/worker-$pool.pid" || return 1; done
}

cmd_start() {
  if running; then
    say "already running (run dir $RUN_DIR); 'stop' first to start afresh"
    return 0
  fi
  cmd_stop 2>/dev/null  # whatever is left of an earlier, partial start
  mkdir -p "$RUN_DIR"
  start_redis "${PORT:-$(free_port)}"
  load_env
  local pool
  for pool in "${POOLS[@]}"; do start_worker "$pool"; done
  for pool in "${STOCK_WORKERS[@]}"; do start_stock_worker "$pool"; done
  for pool in "${WORKERS[@]}"; do
    wait_worker "$pool" || { cmd_stop; return 1; }
  done
  say "up; eval \"\$(scripts/local-cluster.sh env${RUN_DIR_ARG})\" to use it, 'stop' to end it"
}

stop_pid() {
  local pidfile=$1 group=$2 pid
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((STOP_SECONDS * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid ignored SIGTERM for ${STOP_SECONDS}s; killing it"
      if ((group)); then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  [[ -d $RUN_DIR ]] || return 0
  local pool stoppers=()
  # Workers first (in parallel: each may finish its running tasks), then the Redis they need meanwhile.
  for pool in "${WORKERS[@]}"; do stop_pid "$RUN_DIR/worker-$pool.pid" 1 & stoppers+=($!); done
  wait "${stoppers[@]}"
  stop_pid "$RUN_DIR/redis.pid" 0
  rm -f "$RUN_DIR/env" "$RUN_DIR/redis.conf"
  say "stopped (logs kept in $RUN_DIR)"
}

cmd_env() {
  running || { say "not running (run dir $RUN_DIR); start it first"; return 1; }
  load_env
  printf 'export REDIS_URL=%q\n' "$REDIS_URL"
}

main() {
  local command=${1:-}
  [[ -n $command ]] || usage
  shift
  RUN_DIR=$ROOT/.run/local-cluster RUN_DIR_ARG="" PORT=""
  while (($#)); do
    case $1 in
      --port) PORT=${2:?--port needs a number}; shift 2 ;;
      --run-dir) RUN_DIR=$(realpath -m "${2:?--run-dir needs a path}"); RUN_DIR_ARG=" --run-dir $2"; shift 2 ;;
      *) usage ;;
    esac
  done
  case $command in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    *) usage ;;
  esac
}

main "$@"
