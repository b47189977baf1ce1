"""What a benchmark run measures against: its sizes, our executors, and a raw Celery client on the same workers.

Both clients are built from the settings the workers use (``worker/app.py``), so "ours" and "raw"
differ only in the client: ``CeleryExecutor`` versus Celery's own ``delay()`` / ``apply_async()`` and
``AsyncResult.get()``. Each pool's worker consumes a queue named after its pool (``scripts/local-cluster.sh``
starts them); a pool whose queue is not consumed by exactly one worker of that pool is left out, and said so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from celery import Celery, Task
from celery.result import AsyncResult

from celery_futures import CeleryExecutor
from celery_futures.protocol.pools import POOLS
from producer.cluster import WorkerInfo, redis_url_of, workers
from producer.session import Session
from worker.app import create_app

T = TypeVar("T")

CLIENTS_QUEUE = "prefork"
"""The clients are compared on the prefork worker: ours and raw share it, in the same run."""
INSPECT_SECONDS = 1.5
"""How long the workers get to answer ``inspect`` (Celery waits that long for replies)."""


@dataclass(frozen=True)
class Sizes:
    """How much work each part of the matrix does; quick is CI-sized, full is what bench/results records."""

    throughput_tasks: int
    throughput_rounds: int
    latency_calls: int
    command_tasks: int
    pending_tasks: int
    cpu_tasks: int
    io_tasks: int
    steady_tasks: int
    steady_rounds: int
    chunk_items: int
    cpu_task_seconds: float = 0.02
    io_task_seconds: float = 0.05
    chunk_size: int = 64


FULL = Sizes(throughput_tasks=2000, throughput_rounds=5, latency_calls=300, command_tasks=1000,
             pending_tasks=20_000, cpu_tasks=100, io_tasks=400, steady_tasks=20_000, steady_rounds=5,
             chunk_items=20_000)
QUICK = Sizes(throughput_tasks=200, throughput_rounds=2, latency_calls=50, command_tasks=200,
              pending_tasks=2000, cpu_tasks=10, io_tasks=20, steady_tasks=300, steady_rounds=3,
              chunk_items=640)


PING_SECONDS = 2.0


def deadline_for(serial_seconds: float) -> float:
    """A timeout for work that would take ``serial_seconds`` one task at a time: only a hang reaches it."""
    return 30.0 + 3.0 * serial_seconds


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` starting at ``shift``: alternating who goes first spreads drift (caches, load) evenly."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


@dataclass
class Rig:
    """One run's clients and the workers they reach; the measurements append what went wrong to ``problems``."""

    session: Session
    sizes: Sizes
    redis_url: str
    raw_app: Celery
    redis: redis.Redis
    workers: list[WorkerInfo]
    pools: dict[str, WorkerInfo] = field(default_factory=dict)
    """Pool name -> the one worker of that pool consuming the queue of the same name."""
    problems: list[str] = field(default_factory=list)
    _executors: dict[str, CeleryExecutor] = field(default_factory=dict)

    @classmethod
    def open(cls, session: Session, sizes: Sizes) -> Rig:
        """Connect both clients and find the workers; raises ConnectionError if Redis cannot be used."""
        first = session.executor(queue=CLIENTS_QUEUE)
        url = redis_url_of(first)
        raw_app = create_app(url, int(first.settings.result_ttl or 0), default_queue=CLIENTS_QUEUE)
        rig = cls(session, sizes, url, raw_app, first.redis, workers(raw_app, INSPECT_SECONDS))
        rig._executors[CLIENTS_QUEUE] = first
        for pool in POOLS:
            rig._check_consumer(pool)
        return rig

    def _check_consumer(self, pool: str) -> None:
        consumers = [w for w in self.workers if pool in w.queues]
        if len(consumers) == 1 and consumers[0].pool == pool:
            self.pools[pool] = consumers[0]
            return
        found = ", ".join(f"{w.name} ({w.pool})" for w in consumers) or "none"
        self.problems.append(f"queue {pool!r} needs exactly one {pool} worker, found: {found} "
                             f"(scripts/local-cluster.sh starts one per pool); its cells are skipped")

    def ours(self, queue: str) -> CeleryExecutor:
        """This run's executor for ``queue`` (one per queue, shut down with the session)."""
        if queue not in self._executors:
            self._executors[queue] = self.session.executor(queue=queue)
        return self._executors[queue]

    def raw(self, task: Task[Any, Any]) -> Task[Any, Any]:
        """``task`` as bound to the raw client's app (Celery binds shared tasks to every app it finalizes)."""
        return self.raw_app.tasks[task.name]

    def attempt(self, what: str, measure: Callable[[], T]) -> T | None:
        """Run one measurement; a failure becomes a line in ``problems`` instead of ending the run."""
        try:
            return measure()
        except Exception as exc:
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None

    def answers(self, pool: str) -> bool:
        """Whether the pool's worker still answers a ping; a cell without one would only wait for its deadline."""
        name = self.pools[pool].name
        replies = self.raw_app.control.ping(destination=[name], timeout=PING_SECONDS) or []
        if any(name in reply for reply in replies):
            return True
        self.problems.append(f"worker {name} ({pool}) stopped answering; its remaining cells are skipped")
        del self.pools[pool]
        return False

    def worker_cpu_seconds(self, pool: str) -> float | None:
        """CPU time of the pool's worker main process so far (its own rusage, from ``inspect stats``).

        The prefork main process receives, dispatches and acknowledges every task in one thread: its CPU per
        task is the ceiling of a worker's throughput. Pool children are not in it.
        """
        name = self.pools[pool].name
        stats: dict[str, Any] = self.raw_app.control.inspect(destination=[name], timeout=PING_SECONDS).stats() or {}
        rusage = stats.get(name, {}).get("rusage") or {}
        return float(rusage["utime"]) + float(rusage["stime"]) if "utime" in rusage else None

    def commands_so_far(self) -> int:
        """Commands Redis has run since it started, from every client (``INFO commandstats``)."""
        return sum(int(stats["calls"]) for stats in self.redis.info("commandstats").values())

    def close(self) -> None:
        self.raw_app.close()


def settle(futures: Sequence[Future[Any]], timeout: float) -> list[Any]:
    """Every future's result, in order. On the first failure (a lost worker fails its running futures) or at
    the timeout, cancel what is left, so nothing stays queued, and raise."""
    done, not_done = wait(futures, timeout=timeout, return_when=FIRST_EXCEPTION)
    if not_done:
        for future in not_done:
            future.cancel()
        failed = next((f.exception() for f in done if f.exception() is not None), None)
        raise failed or TimeoutError(f"{len(not_done)} of {len(futures)} tasks did not finish in {timeout:.0f}s")
    return [future.result() for future in futures]


def collect(results: Sequence[AsyncResult[Any]], timeout: float) -> list[Any]:
    """Raw Celery's idiom: ``get()`` each result in turn."""
    return [result.get(timeout=timeout) for result in results]
