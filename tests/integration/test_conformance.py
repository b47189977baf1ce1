"""CPython's own ``concurrent.futures`` tests against ``CeleryExecutor`` on every pool of our demo worker.

The executor here is the standalone one (no app: plain functions by name, as CPython's tests submit them);
``tests/integration/test_own_app.py`` runs the same crossing against a user's own app.
"""

from __future__ import annotations

import pytest

from celery_futures import ClientSettings
from celery_futures.protocol.allowlist import Allowlist
from producer.processes import RedisServer, WorkerFactory, WorkerProcess
from tests.conformance import ALLOWLIST_PATTERNS, CeleryMixin, crossed

POOL_CONCURRENCY = {"prefork": 5, "threads": 5, "gevent": 5, "solo": None}
ALLOWLIST = Allowlist(ALLOWLIST_PATTERNS)

globals().update(crossed("", POOL_CONCURRENCY))


@pytest.fixture(scope="module")
def conformance_workers(worker_factory: WorkerFactory) -> dict[str, WorkerProcess]:
    return {}


@pytest.fixture(autouse=True)
def _point_executor_at_pool(request: pytest.FixtureRequest, worker_factory: WorkerFactory,
                            redis_server: RedisServer, conformance_workers: dict[str, WorkerProcess]) -> None:
    cls = request.cls
    if cls is None or not issubclass(cls, CeleryMixin):
        return
    pool = cls.pool
    if pool not in conformance_workers:
        conformance_workers[pool] = worker_factory.start(
            pool, POOL_CONCURRENCY[pool], queue=f"conformance-{pool}", env={"WORKER_ALLOWLIST": str(ALLOWLIST)}
        )
    settings = ClientSettings(redis_server.url(), conformance_workers[pool].queue, ALLOWLIST, 3600)
    cls.executor_kwargs = {"settings": settings}
