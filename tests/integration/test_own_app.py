"""A Celery project written without us (``examples/own_app``, package ``acme``) with the three lines added,
on real Redis and stock ``celery -A acme.app worker`` processes of the prefork, threads and gevent pools.

The same crossing of CPython's own suites as ``test_conformance.py``, with the same exclusions, against
``CeleryExecutor(acme_app)``; then what a user of that app relies on: an exact cancel judged by acme's own
visit counter, acme's own exception type with the worker's traceback, callbacks and progress, tasks by
object and by name, a plain function through the runner, and a SIGKILLed worker ending its futures by policy.
Nothing here imports our demo worker's tasks: only ``celery_futures`` and ``acme``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
import redis
from acme import pricing, tasks
from acme.app import app as acme_app
from acme.errors import InvalidOrderError
from celery import Celery

from celery_futures import CeleryExecutor, CeleryFuture, ClientSettings, RemoteTraceback, WorkerGoneError
from producer.processes import RedisServer, WorkerFactory, WorkerProcess, wait_until
from tests.conformance import ALLOWLIST_PATTERNS, CeleryMixin, crossed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "own_app"
POOLS = ("prefork", "threads", "gevent")
CONCURRENCY = 5
ALLOWLIST = ",".join((*ALLOWLIST_PATTERNS, "acme.pricing.*"))
TIMEOUT = 60
FAST_WATCHDOG = ClientSettings(watchdog_seconds=1.0)
"""A lost worker is noticed within the heartbeat's 10 s TTL plus one watchdog tick."""

globals().update(crossed("OwnApp", POOLS))


def acme_env(redis_server: RedisServer) -> dict[str, str]:
    """What acme's own configuration reads: its Redis, and (for CPython's helpers) its allowlist."""
    return {"PYTHONPATH": str(EXAMPLE), "ACME_REDIS_URL": redis_server.url(), "ACME_ALLOWLIST": ALLOWLIST}


@pytest.fixture(scope="module")
def own_app(redis_server: RedisServer) -> Celery:
    """acme's app in this (producer) process, pointed at the test's Redis as its environment would."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in acme_env(redis_server).items():
            patch.setenv(key, value)
        acme_app.conf.update(broker_url=redis_server.url(), result_backend=redis_server.url(),
                             celery_futures_allowlist=ALLOWLIST)
    return acme_app


@pytest.fixture(scope="module")
def acme_workers(worker_factory: WorkerFactory, redis_server: RedisServer) -> dict[str, WorkerProcess]:
    """One stock ``celery -A acme.app worker`` per pool, each on a queue of its own, started side by side."""
    def start(pool: str) -> WorkerProcess:
        return worker_factory.start_celery("acme.app", pool, CONCURRENCY, f"acme-{pool}", acme_env(redis_server))

    with ThreadPoolExecutor(len(POOLS)) as starter:
        return dict(zip(POOLS, starter.map(start, POOLS), strict=True))


@pytest.fixture(autouse=True)
def _point_executor_at_pool(request: pytest.FixtureRequest, own_app: Celery,
                            acme_workers: dict[str, WorkerProcess]) -> None:
    cls = request.cls
    if cls is not None and issubclass(cls, CeleryMixin):
        cls.executor_kwargs = {"app": own_app, "queue": acme_workers[cls.pool].queue}


@pytest.fixture(params=POOLS)
def acme_worker(request: pytest.FixtureRequest, acme_workers: dict[str, WorkerProcess]) -> WorkerProcess:
    return acme_workers[str(request.param)]


@pytest.fixture
def executor(own_app: Celery, acme_worker: WorkerProcess) -> Iterator[CeleryExecutor]:
    with CeleryExecutor(own_app, queue=acme_worker.queue) as created:
        yield created


def visits(redis_client: redis.Redis, page: str) -> int:
    return int(redis_client.get(f"acme:visits:{page}") or 0)


def deliver(redis_client: redis.Redis, inbox: str, count: int = 1) -> None:
    redis_client.lpush(f"acme:inbox:{inbox}", *[f"parcel-{i}" for i in range(count)])


def wait_running(futures: list[CeleryFuture]) -> None:
    wait_until(lambda: all(f.running() for f in futures), TIMEOUT, "the tasks to start", poll=0.01)


def hold_every_slot(executor: CeleryExecutor) -> tuple[str, list[CeleryFuture]]:
    inbox = f"hold-{uuid.uuid4().hex[:8]}"
    holders = [executor.submit(tasks.next_parcel, inbox, TIMEOUT) for _ in range(CONCURRENCY)]
    wait_running(holders)
    return inbox, holders


# -- what the app's user relies on, on every pool -----------------------------------------------------------
def test_tasks_by_object_and_by_name_and_a_plain_function(executor: CeleryExecutor) -> None:
    assert executor.submit(tasks.checksum, 5000).result(TIMEOUT) == tasks.checksum(5000)
    assert executor.submit("acme.tasks.checksum", 5000).result(TIMEOUT) == tasks.checksum(5000)
    assert executor.submit(pricing.total, [10.0, 5.0], discount=0.5).result(TIMEOUT) == 7.5


def test_a_cancelled_task_never_runs(executor: CeleryExecutor, redis_client: redis.Redis) -> None:
    inbox, holders = hold_every_slot(executor)
    page = f"cancelled-{uuid.uuid4().hex}"
    queued = executor.submit(tasks.count_visit, page)
    assert queued.cancel() is True and queued.cancelled()
    deliver(redis_client, inbox, len(holders))
    assert len([f.result(TIMEOUT) for f in holders]) == CONCURRENCY
    assert executor.submit(tasks.count_visit, page).result(TIMEOUT) == 1  # the cancelled one left no visit


def test_cancels_racing_starts_never_disagree_with_what_ran(executor: CeleryExecutor,
                                                            redis_client: redis.Redis) -> None:
    pages = [f"race-{uuid.uuid4().hex}" for _ in range(100)]
    futures = [executor.submit(tasks.count_visit, page) for page in pages]
    said = [f.cancel() for f in futures]
    wait(futures, timeout=TIMEOUT)
    assert [visits(redis_client, page) for page in pages] == [0 if cancelled else 1 for cancelled in said]
    assert [f.cancelled() for f in futures] == said


def test_acmes_own_exception_arrives_with_its_type_and_traceback(executor: CeleryExecutor) -> None:
    error = executor.submit(tasks.price, {"id": 7, "items": []}).exception(TIMEOUT)
    assert type(error) is InvalidOrderError and str(error) == "order 7 has no items"
    assert isinstance(error.__cause__, RemoteTraceback) and "raise InvalidOrderError" in str(error.__cause__)
    assert executor.submit(tasks.price, {"id": 8, "items": [{"price": 2.5, "quantity": 2}]}).result(TIMEOUT) == 5.0


def test_callbacks_and_progress_arrive_without_anyone_asking(executor: CeleryExecutor) -> None:
    done, seen = threading.Event(), []
    future = executor.submit(tasks.render_report, 3, 0.01)
    future.add_progress_callback(lambda _f, meta: seen.append(meta["current"]))
    future.add_done_callback(lambda _f: done.set())
    assert done.wait(TIMEOUT)  # nobody called result() or wait()
    assert seen == [1, 2, 3] and future.result() == "report of 3 pages"


# -- a worker SIGKILLed under a running task -------------------------------------------------------------------
@pytest.mark.parametrize("pool", POOLS)
def test_a_killed_worker_fails_its_running_future(pool: str, own_app: Celery, worker_factory: WorkerFactory,
                                                  redis_server: RedisServer) -> None:
    queue = f"acme-doomed-{uuid.uuid4().hex[:8]}"
    doomed = worker_factory.start_celery("acme.app", pool, 2, queue, acme_env(redis_server))
    with CeleryExecutor(own_app, queue=queue, settings=FAST_WATCHDOG) as created:
        running = created.submit(tasks.next_parcel, f"never-{uuid.uuid4().hex[:8]}", TIMEOUT)
        wait_running([running])
        doomed.kill()
        error = running.exception(TIMEOUT)
    assert isinstance(error, WorkerGoneError) and doomed.name in str(error) and "policy fail" in str(error)


@pytest.mark.parametrize("pool", POOLS)
def test_under_rerun_a_killed_workers_task_runs_again_elsewhere(pool: str, own_app: Celery,
                                                                 worker_factory: WorkerFactory,
                                                                 redis_server: RedisServer,
                                                                 redis_client: redis.Redis) -> None:
    queue, inbox = f"acme-rerun-{uuid.uuid4().hex[:8]}", f"rerun-{uuid.uuid4().hex[:8]}"
    first = worker_factory.start_celery("acme.app", pool, 2, queue, acme_env(redis_server))
    with CeleryExecutor(own_app, queue=queue, settings=FAST_WATCHDOG, lost_policy="rerun") as created:
        running = created.submit(tasks.next_parcel, inbox, TIMEOUT)
        wait_running([running])
        first_task_id = running.task_id
        first.kill()
        worker_factory.start_celery("acme.app", pool, 2, queue, acme_env(redis_server))
        wait_until(lambda: running.task_id != first_task_id and running.running(), TIMEOUT, "the rerun to start")
        deliver(redis_client, inbox)
        assert running.result(TIMEOUT) == "parcel-0"
    assert running.lost_runs == 1


def test_a_plain_copy_of_the_app_without_install_is_refused(redis_server: RedisServer, own_app: Celery) -> None:
    """The same tasks on an app that never called install(): refused at submit, naming the fix."""
    plain = Celery("acme-plain", set_as_current=False)
    plain.config_from_object("acme.celeryconfig")
    plain.conf.update(broker_url=redis_server.url(), result_backend=redis_server.url())

    @plain.task(name="acme.tasks.count_visit", shared=False)
    def count_visit(page: str) -> Any:
        return page

    from celery_futures import NotInstalledError

    with CeleryExecutor(own_app, queue="nobody") as created, pytest.raises(NotInstalledError, match="install"):
        created.submit(count_visit, "x")
