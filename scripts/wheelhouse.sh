#!/usr/bin/env bash
# Fill services/wheelhouse/ with wheels of every runtime dependency of the library and the lab ([lab]),
# pinned by requirements.lock, plus the build backend under build/. The host builds them with its own network and CA trust, so the image build
# needs neither. Skipped when the lock and pyproject.toml have not changed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/services/wheelhouse
LOCK=$ROOT/requirements.lock
PY=${PYTHON:-$ROOT/.venv/bin/python}
[[ -x $PY ]] || PY=python3

die() { echo "wheelhouse.sh: $*" >&2; exit 1; }
[[ -f $LOCK ]] || die "no $LOCK (pip freeze --exclude-editable > requirements.lock)"
# The images run CPython 3.11 (Debian bookworm's python3, or python:3.11-slim): compiled wheels must match.
version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $version == 3.11 ]] || die "$PY is Python $version; the images need wheels for 3.11 (set PYTHON=)"

stamp=$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [[ -f $OUT/.stamp && $(<"$OUT/.stamp") == "$stamp" ]]; then
  echo "wheelhouse.sh: $OUT is up to date"; exit 0
fi
rm -rf "$OUT/build" && find "$OUT" -maxdepth 1 -name '*.whl' -delete
# The project's dependency closure (the project's own wheel is dropped: the image builds it from source).
"$PY" -m pip wheel -q -w "$OUT" -c "$LOCK" "$ROOT[lab]"
rm -f "$OUT"/celery_futures-*.whl
# The build backend pyproject.toml names, for the offline `pip install .` in the image.
mapfile -t backend < <("$PY" -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"], sep="\n")' "$ROOT/pyproject.toml")
"$PY" -m pip wheel -q -w "$OUT/build" "${backend[@]}"
echo "$version" >"$OUT/PYTHON_VERSION"
echo "$stamp" >"$OUT/.stamp"
echo "wheelhouse.sh: $(find "$OUT" -name '*.whl' | wc -l) wheels in $OUT"
