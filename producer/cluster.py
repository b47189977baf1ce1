"""What the cluster looks like right now: which workers consume a queue, on which pool, how many slots.

Celery's own ``inspect`` (a broadcast the workers answer), wrapped into a small typed record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from celery_futures import CeleryExecutor
from celery_futures.protocol.pools import pool_of_implementation


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    pool: str
    concurrency: int
    queues: tuple[str, ...]


def workers(client: CeleryExecutor | Celery, timeout: float = 2.0) -> list[WorkerInfo]:
    """Every worker that answers within ``timeout`` (asked through the executor's app), sorted by name."""
    app = client.celery_app if isinstance(client, CeleryExecutor) else client
    inspect = app.control.inspect(timeout=timeout)
    stats: dict[str, Any] = inspect.stats() or {}
    queues: dict[str, Any] = inspect.active_queues() or {}
    found = []
    for name, info in stats.items():
        pool = info.get("pool", {})
        spec = pool_of_implementation(str(pool.get("implementation", "")))
        found.append(WorkerInfo(
            name=name,
            pool=spec.name if spec else str(pool.get("implementation")),
            concurrency=int(pool.get("max-concurrency", 1)),
            queues=tuple(q["name"] for q in queues.get(name, [])),
        ))
    return sorted(found, key=lambda w: w.name)


def wait_for_workers(client: CeleryExecutor | Celery, queue: str, seconds: float, terminal: Any) -> list[WorkerInfo]:
    """The workers, once one consumes ``queue`` (asking every second), or what answered at the end. A broker
    that is away meanwhile (a restart, a failover) is asked again, and named if it is still away at the end."""
    deadline = time.monotonic() + seconds
    found, away = answering(client)
    while capacity(found, queue) == 0 and time.monotonic() < deadline:
        terminal.status(f"waiting for a worker on queue {queue!r}..." + (f" (the broker: {away})" if away else ""))
        time.sleep(1.0)
        found, away = answering(client)
    if away:
        raise ConnectionError(f"cannot ask the workers: the broker is away ({away})")
    return found


def answering(client: CeleryExecutor | Celery) -> tuple[list[WorkerInfo], str | None]:
    """:func:`workers`, or none and why when the broker cannot be reached right now."""
    try:
        return workers(client), None
    except (RedisError, OperationalError, OSError) as exc:
        return [], f"{type(exc).__name__}: {exc}"


def capacity(found: list[WorkerInfo], queue: str) -> int:
    """Tasks of ``queue`` that can run at once across the cluster."""
    return sum(w.concurrency for w in found if queue in w.queues)


def queue_of(executor: CeleryExecutor) -> str:
    """The queue an executor's tasks go to: its own, or its app's default (no task_routes in our demo)."""
    return executor.settings.queue or str(executor.celery_app.conf.task_default_queue)


def redis_url_of(executor: CeleryExecutor) -> str:
    """The Redis URL an executor uses: its own, or its app's broker."""
    return executor.settings.redis_url or str(executor.celery_app.conf.broker_url)
