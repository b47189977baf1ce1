#!/bin/sh
# Run inside the image build: the wheelhouse is there and made for this base's Python. Kept out of the
# Dockerfile's RUN line so that a failure shows its reason once, not again inside the echoed command.
set -eu
if [ ! -f /wheels/PYTHON_VERSION ]; then
  echo "services/wheelhouse is empty. Next: scripts/wheelhouse.sh (or scripts/stack-up.sh, which runs it)" >&2
  exit 1
fi
have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
want=$(cat /wheels/PYTHON_VERSION)
if [ "$have" != "$want" ]; then
  echo "the base image has Python $have, the wheelhouse is for $want. Next: scripts/wheelhouse.sh" >&2
  exit 1
fi
