"""``map(..., chunksize=N)`` on real workers of every pool: one task per chunk, the stdlib's map for the caller."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures import wait

import pytest
import redis

from celery_futures import CeleryExecutor
from celery_futures.client.errors import RemoteTraceback
from celery_futures.protocol.pools import POOLS
from producer.demo import wait_running
from producer.gates import new_gate_name, open_gate
from producer.processes import RedisServer, WorkerProcess
from worker import functions
from worker.app import client_app
from worker.tasks import demo as tasks

TIMEOUT = 60


@pytest.fixture
def executor(redis_server: RedisServer, pool_worker: WorkerProcess) -> Iterator[CeleryExecutor]:
    with CeleryExecutor(client_app(redis_server.url()), queue=pool_worker.queue) as created:
        yield created


def stored_tasks(client: redis.Redis, executor: CeleryExecutor) -> int:
    """How many tasks of this executor have a stored result (one per message that ran)."""
    return sum(1 for _ in client.scan_iter(f"celery-task-meta-{executor.task_prefix}*", count=1000))


def test_results_come_in_order_one_task_per_chunk(executor: CeleryExecutor, redis_client: redis.Redis) -> None:
    items = list(range(50))
    assert list(executor.map(functions.square, items, chunksize=7)) == [x * x for x in items]
    assert stored_tasks(redis_client, executor) == math.ceil(len(items) / 7)


def test_tasks_and_several_iterables_chunk_like_the_stdlib(executor: CeleryExecutor) -> None:
    assert list(executor.map(tasks.cpu_bound, [10, 20, 30], chunksize=2)) == [functions.spin(n) for n in (10, 20, 30)]
    assert list(executor.map(pow, [2, 3, 4, 5], [1, 2, 3], chunksize=2)) == [2, 9, 64]  # the shortest wins
    assert list(executor.map(divmod, [(7)], [2], chunksize=5)) == [(3, 1)]  # tuples come back as tuples


def test_an_item_error_surfaces_at_that_item_with_its_type_and_traceback(executor: CeleryExecutor) -> None:
    results = executor.map(divmod, [1, 2, 3, 4, 5], [1, 1, 1, 0, 1], chunksize=3)
    assert [next(results), next(results), next(results)] == [(1, 0), (2, 0), (3, 0)]
    with pytest.raises(ZeroDivisionError) as raised:
        next(results)
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    assert "ZeroDivisionError" in str(raised.value.__cause__)


def test_bad_chunksize_and_bad_items_are_refused_before_anything_is_sent(redis_server: RedisServer,
                                                                         redis_client: redis.Redis) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    with CeleryExecutor(client_app(redis_server.url()), queue=queue) as idle:
        for bad in (0, -3):
            with pytest.raises(ValueError, match="chunksize must be >= 1"):
                idle.map(functions.square, [1, 2], chunksize=bad)
        with pytest.raises(TypeError, match="argument 1"):
            idle.map(pow, [2] * 6, [1, 2, 3, 4, 5, object()], chunksize=4)
        assert redis_client.llen(queue) == 0


def test_a_chunk_given_up_on_before_it_started_never_runs(executor: CeleryExecutor,
                                                          pool_worker: WorkerProcess) -> None:
    """Every slot is held at a gate, so no chunk can start before the timeout; then every chunk is cancelled."""
    gate = new_gate_name()
    slots = pool_worker.concurrency or POOLS[pool_worker.pool].default_concurrency
    blockers = [executor.submit(tasks.gate, gate, TIMEOUT) for _ in range(slots)]
    wait_running(blockers)
    witnesses = [f"w-{uuid.uuid4().hex}" for _ in range(4)]
    results = executor.map(tasks.record, witnesses, chunksize=2, timeout=0.5)
    with pytest.raises(FuturesTimeoutError):
        next(results)
    open_gate(executor.redis, gate, len(blockers))
    wait(blockers, timeout=TIMEOUT)
    assert list(executor.map(tasks.record, witnesses, chunksize=3)) == [1, 1, 1, 1]  # none of the first ran
