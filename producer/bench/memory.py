"""Client memory per pending task: our CeleryFuture next to a bare stdlib Future and raw Celery's AsyncResult.

Pending tasks are sent to a *quiet database*: a Redis logical database that holds no key and that no client
has selected, found at the start. No worker consumes from it, so the tasks stay pending, and nothing else
is disturbed. ``tracemalloc`` traces what this process allocates while ``n`` tasks are sent and kept
pending, after a warm-up send (connections and queue declarations are not per task); what is still
allocated after a ``gc.collect()``, over ``n``, is the client's cost of one pending task. Redis's
``used_memory`` before and after gives the server's side (shared with the workers' background writes:
approximate). Afterwards our executor cancels its futures with ``shutdown(cancel_futures=True)``, the queue
and our claims are deleted, and the quiet database must be empty again.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from celery import Celery, Task

from celery_futures import CeleryExecutor
from celery_futures.protocol import keys as k
from celery_futures.protocol.settings import parse_redis_url
from producer.bench.rig import Rig
from producer.terminal import Advance
from worker.app import client_app, create_app
from worker.tasks import demo as tasks

T = TypeVar("T")

HIGHEST_DB = 15
"""Redis has 16 databases unless configured otherwise; the quiet one is searched from the top down."""
FUTURE, ASYNC_RESULT, CELERY_FUTURE = "stdlib Future", "raw Celery AsyncResult", "CeleryFuture (ours)"
VARIANTS = (FUTURE, ASYNC_RESULT, CELERY_FUTURE)


@dataclass(frozen=True)
class MemoryCost:
    variant: str
    count: int
    client_bytes: int
    """Allocated by this process and still held while ``count`` tasks are pending (tracemalloc)."""
    redis_bytes: int | None
    """Growth of Redis's ``used_memory`` meanwhile (None for the stdlib Future, which sends nothing)."""
    seconds: float


@dataclass
class QuietDb:
    """A Redis database nobody else uses, for sending tasks that must stay pending."""

    url: str
    db: int
    client: redis.Redis
    queue: str = field(default_factory=lambda: f"bench-pending-{uuid.uuid4().hex[:8]}")

    @classmethod
    def find(cls, redis_url: str) -> QuietDb:
        """The highest database with no key and no client, other than the URL's own."""
        base = redis.Redis.from_url(redis_url)
        try:
            busy = {int(info["db"]) for info in base.client_list()} | {parse_redis_url(redis_url).db}
        finally:
            base.close()
        for db in range(HIGHEST_DB, 0, -1):
            if db not in busy and (found := cls._empty(redis_url, db)) is not None:
                return found
        raise RuntimeError(f"no Redis database 1-{HIGHEST_DB} is empty and unused; cannot measure pending tasks")

    @classmethod
    def _empty(cls, redis_url: str, db: int) -> QuietDb | None:
        url = urlsplit(redis_url)._replace(path=f"/{db}").geturl()
        client = redis.Redis.from_url(url)
        try:
            if client.dbsize() == 0:
                return cls(url, db, client)
        except redis.ResponseError:  # fewer databases configured
            pass
        client.close()
        return None

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def queued(self) -> int:
        return int(self.client.llen(self.queue))

    def drop(self, task_prefix: str = "") -> None:
        """Delete the queue and kombu's bookkeeping for it (all named after it), and our claims."""
        patterns = [f"*{self.queue}*"] + ([f"{k.CLAIM_PREFIX}{task_prefix}*"] if task_prefix else [])
        for pattern in patterns:
            keys = list(self.client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 1000):
                self.client.unlink(*keys[start:start + 1000])

    def leftovers(self) -> int:
        return int(self.client.dbsize())

    def close(self) -> None:
        self.client.close()


@contextmanager
def quiet_executor(quiet: QuietDb) -> Iterator[CeleryExecutor]:
    """An executor on the quiet queue, warmed up; on exit its futures are cancelled and its keys deleted."""
    executor = CeleryExecutor(client_app(quiet.url), queue=quiet.queue)
    try:
        executor.submit(tasks.noop)
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        quiet.drop(executor.task_prefix)


@contextmanager
def quiet_raw(quiet: QuietDb, task: Task[Any, Any], *args: Any) -> Iterator[Task[Any, Any]]:
    """Raw Celery's ``task`` on an app whose default queue is the quiet one, warmed up; closed on exit."""
    app: Celery = create_app(quiet.url, default_queue=quiet.queue)
    bound = app.tasks[task.name]
    try:
        bound.delay(*args)
        yield bound
    finally:
        gc.collect()  # pending AsyncResults are gone: raw Celery unsubscribes from their channels
        app.close()
        quiet.drop()


def traced(make: Callable[[], T]) -> tuple[int, T]:
    """Bytes allocated by ``make()`` and still held afterwards, with what it made (kept alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = make()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, made
    finally:
        tracemalloc.stop()


def cost_of(quiet: QuietDb | None, variant: str, n: int, make: Callable[[], list[T]]) -> tuple[MemoryCost, list[T]]:
    started = time.perf_counter()
    redis_before = quiet.used_memory() if quiet else 0
    client_bytes, made = traced(make)
    redis_bytes = quiet.used_memory() - redis_before if quiet else None
    return MemoryCost(variant, n, client_bytes, redis_bytes, time.perf_counter() - started), made


def measure_memory(rig: Rig, quiet: QuietDb, n: int, advance: Advance) -> list[MemoryCost]:
    """Client memory per pending task: stdlib Future, raw AsyncResult, our CeleryFuture; one step each."""
    costs = [cost_of(None, FUTURE, n, lambda: [Future[None]() for _ in range(n)])[0]]
    advance()
    with quiet_raw(quiet, tasks.noop) as noop:
        cost, results = cost_of(quiet, ASYNC_RESULT, n, lambda: [noop.delay() for _ in range(n)])
        check_queued(rig, quiet, ASYNC_RESULT, n + 1)
        costs.append(cost)
        del results
    advance()
    with quiet_executor(quiet) as executor:
        cost, futures = cost_of(quiet, CELERY_FUTURE, n, lambda: [executor.submit(tasks.noop) for _ in range(n)])
        check_queued(rig, quiet, CELERY_FUTURE, n + 1)
        costs.append(cost)
    if not all(future.cancelled() for future in futures):
        rig.problems.append("memory: shutdown(cancel_futures=True) left pending futures not cancelled")
    advance()
    return costs


def check_queued(rig: Rig, quiet: QuietDb, variant: str, expected: int) -> None:
    if (queued := quiet.queued()) != expected:
        rig.problems.append(f"memory {variant}: {queued} tasks queued, expected {expected}")


def memory_or_problem(rig: Rig, advance: Advance) -> list[MemoryCost]:
    """The three measurements (one progress step each) on a quiet database, which must be empty afterwards."""
    quiet = QuietDb.find(rig.redis_url)
    try:
        memory = rig.attempt("memory", lambda: measure_memory(rig, quiet, rig.sizes.pending_tasks, advance))
        if (left := quiet.leftovers()) != 0:
            rig.problems.append(f"quiet database {quiet.db}: {left} keys left behind after the measurements")
    finally:
        quiet.close()
    return memory or []
