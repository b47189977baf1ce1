"""Names our demo worker and lab agree on: the worker's environment variables and the lab's Redis keys.

The protocol's own names (claims, heartbeats, the runner) live in ``celery_futures/protocol/keys.py``; what
is here is only ours: how ``python -m worker`` is configured, and the keys the demo tasks use to make a
run observable (gates a test opens, counters that prove a task ran).
"""

from __future__ import annotations

from typing import Final

from celery_futures.protocol.allowlist import DEFAULT_ALLOWLIST
from celery_futures.protocol.pools import POOLS
from celery_futures.protocol.settings import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_RESULT_TTL,
    ENV_ALLOWLIST,
    ENV_MAX_MESSAGE_BYTES,
    ENV_REDIS_URL,
    ENV_RESULT_TTL,
)

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "DEFAULT_RESULT_TTL", "ENV_ALLOWLIST", "ENV_MAX_MESSAGE_BYTES",
           "ENV_REDIS_URL", "ENV_RESULT_TTL"]

# -- environment variables of ``python -m worker`` (docs/configuration.md) -----------------------------
ENV_POOL: Final = "WORKER_POOL"
"""Pool name: prefork, threads, gevent or solo."""
ENV_CONCURRENCY: Final = "WORKER_CONCURRENCY"
"""Pool size; the pool's own default when unset."""
ENV_NAME: Final = "WORKER_NAME"
"""Celery node name; ``<pool>@<hostname>`` when unset, so Flower shows the pool at a glance."""
ENV_QUEUES: Final = "WORKER_QUEUES"
"""Comma-separated queues the worker consumes."""
ENV_LOGLEVEL: Final = "WORKER_LOGLEVEL"
ENV_CONNECT_ATTEMPTS: Final = "WORKER_CONNECT_ATTEMPTS"
"""How many times to try Redis before giving up at start; 0 means for ever."""
ENV_EVENT_FLUSH: Final = "WORKER_EVENT_FLUSH_SECONDS"
"""How long task events wait to leave in one batch (``celery_futures/worker/events.py``); 0: Celery's own."""
ENV_LEDGER_REDIS_URL: Final = "LEDGER_REDIS_URL"
"""Where the ledger tasks keep their ledger and gates (a harness's own Redis); unset: beside the results."""

DEMO_ALLOWLIST: Final = (*DEFAULT_ALLOWLIST, "worker.functions.*")
"""The library's harmless default, plus our own plain demo functions."""

# -- the lab's Redis keys (all ours start with "cfx:") ----------------------------------------------------
GATE_PREFIX: Final = "cfx:gate:"
"""``cfx:gate:<name>``: a list the gate task BLPOPs; a test LPUSHes to release it."""
RECORD_PREFIX: Final = "cfx:record:"
"""``cfx:record:<name>``: a counter the record task increments, so tests can prove a task ran or not."""
LEDGER_PREFIX: Final = "cfx:ledger:"
"""``cfx:ledger:<run>``: a hash of task token -> runs, written by the ledger tasks for soak checks."""

POOL_QUEUES: Final[tuple[str, ...]] = tuple(POOLS)
"""Side by side, each pool's worker consumes a queue named after its pool (the compose ``pools`` profile,
``scripts/local-cluster.sh``); the lessons and the benchmark rely on it."""
