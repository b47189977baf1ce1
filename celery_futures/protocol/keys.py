"""Every name the client and the worker extension must agree on: Redis keys, task ids, claim values, states.

A key written by a worker and read by a producer can never drift apart when both build it here (the arq
``constants.py`` idea). All our keys start with ``cfx:``; Celery's own keys are left alone.
"""

from __future__ import annotations

import re
from typing import Final

# -- Redis keys -----------------------------------------------------------------------------------------
CLAIM_PREFIX: Final = "cfx:claim:"
"""``cfx:claim:<task id>``: who won the race to a task, a worker starting it or a producer cancelling it."""
INTERRUPT_PREFIX: Final = "cfx:interrupt:"
"""``cfx:interrupt:<task id>``: set by a producer to ask a running task to stop (the cooperative flag)."""
ALIVE_PREFIX: Final = "cfx:alive:"
"""``cfx:alive:<node name>``: a worker's heartbeat, refreshed by a real thread, expiring when it dies."""
ALIVE_NODES: Final = "cfx:alive-nodes"
"""A set of the node names that beat: every beat adds its own, so a client finds every heartbeat key with
one read instead of a SCAN over the whole keyspace (which grows with every stored result). A member whose
key has expired is a worker that stopped beating; clients remove it, and a live worker adds itself back
at its next beat. Each beat also renews the set's own lifetime, so it expires with the last worker."""
CLIENT_PREFIX: Final = "cfx:client:"
"""``cfx:client:<executor id>``: a client's marker, written when it starts. Redis losing its data (a restart
without persistence, a flush) takes it too, and the cancel script refuses to decide without it: a missing
marker means the claims it would decide on may be gone."""

# -- claim values (``cfx:claim:<id>``) ------------------------------------------------------------------------
CLAIM_CANCELLED: Final = "cancelled"
CLAIM_STARTED: Final = "started"
CLAIM_HELD: Final = "held"
"""A worker received the task and may start it; a cancel still wins over this, and the producer takes it back
if that worker dies first (``celery_futures/client/watchdog.py``)."""
CLAIM_RECLAIMED: Final = "reclaimed"
"""Written by a worker that noticed Redis lost its data, for each task it had accepted before: the task runs
there (a cancel loses to it, as to ``started``), or, if it had not reached its start claim, never will."""

# -- heartbeats: the worker beats this often, the client judges by the TTL ----------------------------------
BEAT_SECONDS: Final = 2.0
"""How often a worker refreshes its alive key."""
ALIVE_TTL_SECONDS: Final = 10
"""How long the key outlives the last beat: five missed beats before a worker counts as gone."""

# -- task ids and names -----------------------------------------------------------------------------------
TASK_ID_PREFIX: Final = "cfx-"
"""Task ids a client makes start with this, then the executor's own id, so one pattern covers them."""
TASK_ID: Final = re.compile(rb"cfx-[0-9a-f]{12}-[0-9a-f]{32}")
"""A client's task id anywhere in a raw message (what the watchdog looks for in queues)."""
RUNNER_TASK: Final = "celery_futures.call"
"""The generic runner the worker extension registers: runs an allowlisted plain function by name."""

STATE_PROGRESS: Final = "PROGRESS"
"""The custom Celery state a progress-reporting task publishes, with ``{"current", "total"}`` meta."""


def claim_key(task_id: str) -> str:
    return f"{CLAIM_PREFIX}{task_id}"


def interrupt_key(task_id: str) -> str:
    return f"{INTERRUPT_PREFIX}{task_id}"


def alive_key(node: str) -> str:
    return f"{ALIVE_PREFIX}{node}"


def client_key(executor_id: str) -> str:
    return f"{CLIENT_PREFIX}{executor_id}"


def task_prefix(executor_id: str) -> str:
    """What every task id of one executor starts with (and nothing else's does)."""
    return f"{TASK_ID_PREFIX}{executor_id}-"
