"""What the cluster looks like right now: which workers consume a queue, on which pool, how many slots.

Celery's own ``inspect`` (a broadcast the workers answer), wrapped into a small typed record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.pools import pool_of_implementation


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    pool: str
    concurrency: int
    queues: tuple[str, ...]


def workers(app: Any, timeout: float = 2.0) -> list[WorkerInfo]:
    """Every worker that answers within ``timeout``, sorted by name."""
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


def capacity(found: list[WorkerInfo], queue: str) -> int:
    """Tasks of ``queue`` that can run at once across the cluster."""
    return sum(w.concurrency for w in found if queue in w.queues)
