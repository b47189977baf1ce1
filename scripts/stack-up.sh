#!/usr/bin/env bash
# Run the stack: Redis, a worker, Flower, then the producer demo (docs/stack.md; what scripts/main.sh runs).
#
#   scripts/stack-up.sh [--no-demo]
#
# Starts a Docker engine if none runs and we are root on Debian, prepares local base images if no registry
# answers, writes .env with random passwords if it is missing, builds and starts the stack, and waits for
# the healthchecks. Without any way to get Docker, it falls back to scripts/local-demo.sh (no containers).
# Stop it with `docker compose --profile '*' down -v`; if this script started the engine, `.ci/docker.sh engine-down` after.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
demo=1
[[ ${1:-} == --no-demo ]] && demo=0

say() { echo "stack-up: $*" >&2; }

fallback() {
  say "$1"
  if [[ -x scripts/local-demo.sh ]]; then
    say "falling back to scripts/local-demo.sh (local redis-server and one worker, no Docker)"
    exec scripts/local-demo.sh
  fi
  say "no Docker and no scripts/local-demo.sh: cannot run the stack here"; exit 1
}

# 1. An engine: use the one that runs, or start one where we can (root on Debian).
if ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) == 0 && -f /etc/debian_version ]]; then
    .ci/docker.sh engine-up || fallback "could not start a Docker engine"
  else
    fallback "no Docker engine answers (start Docker, or run this as root on Debian)"
  fi
fi
# 2. Compose v2.
docker compose version >/dev/null 2>&1 || .ci/docker.sh compose-install >/dev/null \
  || fallback "Compose v2 is missing and could not be installed"
# 3. Secrets (a generated, gitignored .env) and the wheelhouse the image installs from.
scripts/gen-env.sh
scripts/wheelhouse.sh
# 4. Base images: public ones if a registry answers, else local ones, whose names compose must be given.
#    They are also kept in .env, so later plain `docker compose ...` commands use them too.
.ci/docker.sh base-images
while IFS= read -r setting; do
  export "${setting?}"
  if grep -q "^${setting%%=*}=" .env; then
    sed -i "s|^${setting%%=*}=.*|$setting|" .env
  else
    echo "$setting" >>.env
  fi
done < <(.ci/docker.sh env)
# 5. Build, start, and wait until every service is healthy.
docker buildx version >/dev/null 2>&1 ||
  say "buildx is not installed, so compose warns once that it cannot build with Bake; it builds without it"
if ! docker compose up --build -d --wait --wait-timeout 300; then
  # Compose says only which service failed; say why, in the lines the services themselves printed.
  reason=$(docker compose logs --no-log-prefix worker-settings 2>/dev/null | grep -E "error|Error" | tail -n 1)
  [[ -n $reason ]] && say "the worker's settings were refused: ${reason#*error: }"
  for service in $(docker compose ps -a --status exited --status restarting --format '{{.Service}}' 2>/dev/null); do
    say "last lines of $service:"; docker compose logs --no-log-prefix --tail 5 "$service" >&2
  done
  exit 1
fi
((demo)) && docker compose run --rm producer

flower=$(docker compose port flower 5555)
redis=$(docker compose port redis 6379)
user=$(sed -n 's/^FLOWER_USER=//p' .env)
cat >&2 <<EOF
stack-up: the stack is up (docker compose ps).
  Flower:   http://$flower   user ${FLOWER_USER:-${user:-admin}}, password: FLOWER_PASSWORD in .env
  Redis:    $redis (REDIS_PASSWORD in .env), for producers on this host
  Stop:     docker compose --profile '*' down -v
EOF
