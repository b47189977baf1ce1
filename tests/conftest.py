"""Session fixtures: one real redis-server, and real workers of every pool started on demand."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from celery import Celery

from producer.processes import RedisServer, WorkerFactory, WorkerProcess, client_app

ALL_POOLS = ("prefork", "threads", "gevent", "solo")
SHARED_CONCURRENCY = {"prefork": 2, "threads": 8, "gevent": 50, "solo": None}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> redis.Redis:
    return redis_server.client()


@pytest.fixture(scope="session")
def celery_client(redis_server: RedisServer) -> Iterator[Celery]:
    app = client_app(redis_server)
    yield app
    app.close()


@pytest.fixture(scope="session")
def worker_factory(redis_server: RedisServer, celery_client: Celery,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerFactory]:
    factory = WorkerFactory(redis_server, tmp_path_factory.mktemp("workers"), celery_client)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def shared_workers(worker_factory: WorkerFactory) -> dict[str, WorkerProcess]:
    """One long-lived worker per pool, started the first time a test asks for that pool."""
    return {}


@pytest.fixture(params=ALL_POOLS)
def pool_worker(request: pytest.FixtureRequest, worker_factory: WorkerFactory,
                shared_workers: dict[str, WorkerProcess]) -> WorkerProcess:
    """The shared worker of each pool in turn (tests using it run once per pool)."""
    pool = str(request.param)
    if pool not in shared_workers or shared_workers[pool].process.poll() is not None:
        shared_workers[pool] = worker_factory.start(pool, SHARED_CONCURRENCY[pool])
    return shared_workers[pool]


POOL_QUEUE_CONCURRENCY = {"prefork": 2, "threads": 4, "gevent": 20, "solo": None}


@pytest.fixture(scope="session")
def pool_queue_workers(worker_factory: WorkerFactory) -> dict[str, WorkerProcess]:
    """One worker per pool, each consuming the queue named after its pool (what lessons and bench send to),
    started side by side once for the session."""
    with ThreadPoolExecutor(len(POOL_QUEUE_CONCURRENCY)) as starter:
        return dict(zip(POOL_QUEUE_CONCURRENCY, starter.map(
            lambda pool: worker_factory.start(pool, POOL_QUEUE_CONCURRENCY[pool], queue=pool),
            POOL_QUEUE_CONCURRENCY), strict=True))
