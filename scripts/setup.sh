#!/usr/bin/env bash
# Prepare a fresh Debian bookworm machine: system packages, then .venv with the locked dependency set.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server for the integration tests and the local demo; Debian's python3.11 with CPython's own test
# suite (the conformance tests); chromium for the Flower browser test.
apt_packages=(redis-server python3.11-venv libpython3.11-testsuite chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's python3.11: its libpython3.11-testsuite carries CPython's own test_concurrent_futures.py.
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv" >&2
  /usr/bin/python3.11 -m venv .venv
fi
# The library (editable) with the lab's and the tests' extras; redone when the lock or pyproject.toml change.
stamp=.venv/.installed-lock
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(<"$stamp") != "$wanted" ]]; then
  echo "setup: installing the project and its locked dependencies into .venv" >&2
  log=$(mktemp)
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -c requirements.lock -e '.[lab,dev]'; } \
      >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
  echo "$wanted" >"$stamp"
fi
