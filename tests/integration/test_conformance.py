"""CPython's own ``concurrent.futures`` tests, run as they are against ``CeleryExecutor`` on every pool.

The file is Debian's ``libpython3.11-testsuite`` copy of ``Lib/test/test_concurrent_futures.py``, imported
(not copied). Its ``ExecutorTest``, ``WaitTests``, ``AsCompletedTests`` and ``ExecutorShutdownTest`` are
crossed with a mixin whose ``executor_type`` is ``CeleryExecutor``, the way its own
``create_executor_tests`` does, and run against a real worker of each pool. The workers import the
module's helpers (``mul``, ``capture``, ``sleep_and_raise``...) through the allowlist.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from celery_futures import CeleryExecutor, ClientSettings
from celery_futures.protocol.allowlist import Allowlist
from producer.processes import RedisServer, WorkerFactory, WorkerProcess

cpython = pytest.importorskip("test.test_concurrent_futures", reason="apt-get install libpython3.11-testsuite")

ALLOWLIST = Allowlist(("builtins.pow", "builtins.divmod", "builtins.str", "builtins.id", "time.sleep",
                       "test.test_concurrent_futures.*"))
POOL_CONCURRENCY = {"prefork": 5, "threads": 5, "gevent": 5, "solo": None}
CONTRACTS = {
    "Executor": cpython.ExecutorTest,
    "Wait": cpython.WaitTests,
    "AsCompleted": cpython.AsCompletedTests,
    "Shutdown": cpython.ExecutorShutdownTest,
}

# Tests that cannot apply to any executor that runs work in another process reached by name, with reasons.
# The three interpreter-shutdown tests have our own versions in test_executor_exit.py.
EXCLUDED = {
    "test_interpreter_shutdown": "starts an interpreter that imports the executor from concurrent.futures; "
                                 "our version: tests/integration/test_executor_exit.py",
    "test_submit_after_interpreter_shutdown": "imports the executor from concurrent.futures in a fresh "
                                              "interpreter; our version: tests/integration/test_executor_exit.py",
    "test_hang_gh83386": "imports the executor from concurrent.futures in a fresh interpreter; "
                         "our version: tests/integration/test_executor_exit.py",
    "test_no_stale_references": "submits a bound method of a local object: only importable functions can be "
                                "called by name on a worker (submit raises TypeError)",
    "test_cancel_futures": "asserts that some of 50 sleeps submitted a moment earlier have finished; "
                           "ThreadPoolExecutor starts its first item inside submit(), but an exact "
                           "cluster-wide cancel rightly cancels all 50 when no worker has started one yet. "
                           "Our deterministic version: test_executor.py::test_shutdown_cancel_futures_*",
    "test_free_reference": "returns instances of a local class, which JSON cannot carry back (JSON only, "
                           "never pickle)",
}
# Tests that need tasks to run side by side, which the solo pool never does.
SOLO_SEQUENTIAL: dict[str, str] = {}


class CeleryMixin(cpython.ExecutorMixin):  # type: ignore[misc,name-defined]
    executor_type = CeleryExecutor
    pool = "prefork"
    executor_kwargs: ClassVar[dict[str, Any]] = {}


def skipped(reason: str) -> Callable[..., None]:
    @unittest.skip(reason)
    def test(self: unittest.TestCase) -> None:
        """Excluded."""

    return test


def expected_failure(method: Callable[..., None]) -> Callable[..., None]:
    return unittest.expectedFailure(method)


def make_class(pool: str, contract_name: str, contract: type) -> type:
    overrides: dict[str, Any] = {"pool": pool}
    for name, reason in EXCLUDED.items():
        if hasattr(contract, name):
            overrides[name] = skipped(reason)
    if pool == "solo":
        for name in SOLO_SEQUENTIAL:
            if hasattr(contract, name):
                overrides[name] = expected_failure(getattr(contract, name))
    class_name = f"Test{pool.capitalize()}{contract_name}"
    return type(class_name, (contract, CeleryMixin, cpython.BaseTestCase), overrides)


for _pool in POOL_CONCURRENCY:
    for _name, _contract in CONTRACTS.items():
        _cls = make_class(_pool, _name, _contract)
        globals()[_cls.__name__] = _cls
del _pool, _name, _contract, _cls


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
