"""What the run left in Redis once its futures are gone: subscriptions, connections and keys of ours.

Our producer's footprint is findable by name: its listener's pattern subscription (``PUBSUB NUMPAT`` back
to what the workers alone hold), its connection name ``listener-cfx-<executor id>``, and its task ids
``cfx-<executor id>-...`` in channel and key names. Every key of ours (``cfx:*`` and the task results) must
expire. Kombu's own ``unacked`` hash is reported too: it is where a killed worker's messages wait.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis

from celery_futures.protocol import keys as k
from celery_futures.protocol.keys import claim_key
from worker import constants as c

SETTLE_SECONDS = 30.0
"""How long the workers get to re-subscribe after the restart and to drain the queue of cancelled tasks."""
OURS = "cfx:"
"""Every key our code writes starts with it (``worker/constants.py``)."""
UNACKED = "unacked"
"""Kombu's hash of messages delivered to a worker and not yet acknowledged."""
CATEGORIES = {k.CLAIM_PREFIX: "claim", k.INTERRUPT_PREFIX: "interrupt", c.LEDGER_PREFIX: "ledger",
              k.ALIVE_PREFIX: "alive", c.GATE_PREFIX: "gate", c.RECORD_PREFIX: "record"}


@dataclass(frozen=True)
class RedisFigures:
    numpat_baseline: int
    """Patterns subscribed before the executor started (the workers' own)."""
    numpat_after: int
    channels_of_ours: list[str]
    clients_of_ours: list[str]
    keys_total: int
    keys_ours: dict[str, int]
    """Keys of ours by kind: claim, interrupt, ledger, alive, result..."""
    keys_without_ttl: list[str]
    queue_left: int
    unacked_ours: int
    """Messages of this executor's tasks still in kombu's ``unacked`` hash."""


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def numpat(client: redis.Redis) -> int:
    return int(client.pubsub_numpat())


def settle(check: Any, seconds: float = SETTLE_SECONDS) -> None:
    """Give a condition ``seconds`` to come true (the end state is reported either way)."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def category(key: str, result_prefix: str) -> str:
    if key.startswith(result_prefix):
        return "result"
    return next((name for prefix, name in CATEGORIES.items() if key.startswith(prefix)), "other cfx")


def keys_of_ours(client: redis.Redis, result_prefix: str) -> dict[str, int]:
    """Every key of ours with its TTL (-1: none)."""
    keys = [text(k) for pattern in (f"{OURS}*", f"{result_prefix}*")
            for k in client.scan_iter(match=pattern, count=1000)]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.ttl(key)
        ttls = pipe.execute()
    return dict(zip(keys, (int(t) for t in ttls), strict=True))


def message_id(raw: bytes | str) -> str:
    """The task id in a kombu message as Redis stores it (JSON with Celery's protocol 2 headers)."""
    message = json.loads(raw)
    if isinstance(message, list):  # kombu's unacked entries: [message, exchange, routing key]
        message = message[0]
    return str(message.get("headers", {}).get("id", ""))


def unacked_ids(client: redis.Redis) -> set[str]:
    """Ids of the tasks whose messages a worker has taken and not acknowledged (not started, for us)."""
    return {message_id(raw) for raw in client.hvals(UNACKED)}


def queued_ids(client: redis.Redis, queue: str) -> set[str]:
    return {message_id(raw) for raw in client.lrange(queue, 0, -1)}


def result_prefix_of(app: Any) -> str:
    """The backend's key prefix for task states: ``celery-task-meta-`` unless the app configured another."""
    backend: Any = app.backend
    return str(backend.get_key_for_task("x")[:-1].decode())


def last_seen(client: redis.Redis, stuck: list[dict[str, Any]], *, result_prefix: str,
              queue: str) -> list[dict[str, Any]]:
    """Each entry of ``stuck`` (futures that never ended, with their ``task_id``) with where Redis last saw its
    task, or why that is unknown."""
    try:
        found = whereabouts(client, [entry["task_id"] for entry in stuck], result_prefix=result_prefix, queue=queue)
    except redis.RedisError as exc:
        found = {entry["task_id"]: {"whereabouts": f"unknown: {exc}"} for entry in stuck}
    return [{**entry, **found.get(entry["task_id"], {})} for entry in stuck]


def whereabouts(client: redis.Redis, task_ids: list[str], *, result_prefix: str, queue: str) -> dict[str, Any]:
    """Where each task is as far as Redis knows: its claim, its stored state, its message."""
    if not task_ids:
        return {}
    unacked, queued = unacked_ids(client), queued_ids(client, queue)
    claims = client.mget([claim_key(task_id) for task_id in task_ids])
    metas = client.mget([f"{result_prefix}{task_id}" for task_id in task_ids])
    return {task_id: {"claim": None if claim is None else text(claim),
                      "stored_state": None if meta is None else json.loads(meta).get("status"),
                      "message": "queued" if task_id in queued else "unacked" if task_id in unacked else "gone"}
            for task_id, claim, meta in zip(task_ids, claims, metas, strict=True)}


def inspect_redis(client: redis.Redis, *, executor_id: str, result_prefix: str, queue: str,
                  numpat_baseline: int) -> RedisFigures:
    """Read the end state, after giving the workers time to re-subscribe and to drain the queue."""
    settle(lambda: numpat(client) == numpat_baseline and client.llen(queue) == 0)
    task_prefix = f"{k.TASK_ID_PREFIX}{executor_id}-"
    keys = keys_of_ours(client, f"{result_prefix}{task_prefix}")
    return RedisFigures(
        numpat_baseline=numpat_baseline,
        numpat_after=numpat(client),
        channels_of_ours=sorted(text(ch) for ch in client.pubsub_channels() if executor_id in text(ch)),
        clients_of_ours=sorted(str(cl["name"]) for cl in client.client_list() if executor_id in str(cl["name"])),
        keys_total=int(client.dbsize()),
        keys_ours=dict(Counter(category(key, result_prefix) for key in keys)),
        keys_without_ttl=sorted(key for key, ttl in keys.items() if ttl == -1),
        queue_left=int(client.llen(queue)),
        unacked_ours=sum(1 for task_id in unacked_ids(client) if task_id.startswith(task_prefix)),
    )
