"""Every name the worker and the producer must agree on, in one place.

Environment variables, Redis key prefixes and the default queue live here so that a key written by a
worker and read by a producer can never drift apart (the arq ``constants.py`` idea).
"""

from __future__ import annotations

from typing import Final

# -- environment variables (documented in README.md, "Configuration") --------------------------------
ENV_REDIS_URL: Final = "REDIS_URL"
"""Broker and result backend URL, with the password: ``redis://:secret@127.0.0.1:6379/0``."""
ENV_POOL: Final = "WORKER_POOL"
"""Pool name: prefork, threads, gevent or solo."""
ENV_CONCURRENCY: Final = "WORKER_CONCURRENCY"
"""Pool size; the pool's own default when unset."""
ENV_NAME: Final = "WORKER_NAME"
"""Celery node name; ``<pool>@<hostname>`` when unset, so Flower shows the pool at a glance."""
ENV_QUEUES: Final = "WORKER_QUEUES"
"""Comma-separated queues the worker consumes."""
ENV_LOGLEVEL: Final = "WORKER_LOGLEVEL"
ENV_ALLOWLIST: Final = "WORKER_ALLOWLIST"
"""Comma-separated patterns of plain functions the generic runner may call (``math.*``)."""
ENV_CONNECT_ATTEMPTS: Final = "WORKER_CONNECT_ATTEMPTS"
"""How many times to try Redis before giving up at start; 0 means for ever."""
ENV_BOOT_ID: Final = "WORKER_BOOT_ID"
"""Set by the worker itself at start (not by users): this boot's id, inherited by the pool's children."""
ENV_PRODUCER_QUEUE: Final = "PRODUCER_QUEUE"
"""The queue a producer's tasks go to unless the executor is given one."""
ENV_CONNECT_TIMEOUT: Final = "PRODUCER_CONNECT_TIMEOUT"
"""Seconds a producer waits for Redis at start before it says it cannot reach it."""
ENV_SEND_TIMEOUT: Final = "PRODUCER_SEND_TIMEOUT"
"""Seconds a producer keeps trying to hand a task to Redis before the future fails with SendError."""
ENV_MAX_PAYLOAD: Final = "PRODUCER_MAX_PAYLOAD_BYTES"
"""The largest JSON arguments a producer sends; bigger ones are refused at submit."""
ENV_MAX_MESSAGE_BYTES: Final = "WORKER_MAX_MESSAGE_BYTES"
"""The largest message (as stored in Redis) a worker accepts; bigger ones are logged and discarded."""
ENV_RESULT_TTL: Final = "RESULT_TTL_SECONDS"
"""How long results, claims and interrupt flags stay in Redis."""

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE: Final = "celery"
DEFAULT_RESULT_TTL: Final = 24 * 3600
DEFAULT_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
"""Room for the producer's largest arguments (1 MiB of JSON, 1.33x once base64-encoded) and the envelope."""
DEFAULT_ALLOWLIST: Final = (
    "builtins.pow",
    "builtins.divmod",
    "builtins.abs",
    "builtins.sum",
    "builtins.min",
    "builtins.max",
    "builtins.len",
    "builtins.round",
    "builtins.sorted",
    "builtins.str",
    "math.*",
    "time.sleep",
    "worker.functions.*",
)
"""Harmless by construction: no builtin that opens files, imports or evaluates code."""

# -- Redis keys (all ours start with "cfx:", Celery's own keys are left alone) -----------------------
CLAIM_PREFIX: Final = "cfx:claim:"
"""``cfx:claim:<task id>``: who won the race to a task, a worker starting it or a producer cancelling it."""
INTERRUPT_PREFIX: Final = "cfx:interrupt:"
"""``cfx:interrupt:<task id>``: set by a producer to ask a running task to stop (the cooperative flag)."""
GATE_PREFIX: Final = "cfx:gate:"
"""``cfx:gate:<name>``: a list the gate task BLPOPs; a test LPUSHes to release it."""
RECORD_PREFIX: Final = "cfx:record:"
"""``cfx:record:<name>``: a counter the record task increments, so tests can prove a task ran or not."""
LEDGER_PREFIX: Final = "cfx:ledger:"
"""``cfx:ledger:<run>``: a hash of task token -> runs, written by the ledger tasks for soak checks."""
ALIVE_PREFIX: Final = "cfx:alive:"
"""``cfx:alive:<node name>``: a worker's heartbeat, refreshed by a real thread, expiring when it dies."""

CLAIM_CANCELLED: Final = "cancelled"
CLAIM_STARTED: Final = "started"
CLAIM_HELD: Final = "held"
"""A worker received the task and may start it; a cancel still wins over this, and the producer takes it back
if that worker dies first (``producer/recovery.py``)."""

STATE_PROGRESS: Final = "PROGRESS"
"""The custom Celery state a progress-reporting task publishes, with ``{"current", "total"}`` meta."""

TASK_ID_PREFIX: Final = "cfx-"
"""Task ids our producer makes start with this, then the executor's own id, so one pattern covers them."""
