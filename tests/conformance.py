"""CPython's own ``concurrent.futures`` contract tests, crossed with ``CeleryExecutor`` the way CPython's own
``create_executor_tests`` crosses them with its executors.

The file is Debian's ``libpython3.11-testsuite`` copy of ``Lib/test/test_concurrent_futures.py``, imported
(not copied). Its ``ExecutorTest``, ``WaitTests``, ``AsCompletedTests`` and ``ExecutorShutdownTest`` run as they
are; a test module picks the pools and, per pool, the executor's keyword arguments (which app, which queue).
The workers import the module's helpers (``mul``, ``capture``, ``sleep_and_raise``...) through the allowlist.
The exclusions are the same for every app, each with its reason and where our own version of it lives.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import pytest

from celery_futures import CeleryExecutor

cpython = pytest.importorskip("test.test_concurrent_futures", reason="apt-get install libpython3.11-testsuite")

ALLOWLIST_PATTERNS = ("builtins.pow", "builtins.divmod", "builtins.str", "builtins.id", "time.sleep",
                      "test.test_concurrent_futures.*")
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


class CeleryMixin(cpython.ExecutorMixin):  # type: ignore[misc,name-defined]
    executor_type = CeleryExecutor
    pool = "prefork"
    executor_kwargs: ClassVar[dict[str, Any]] = {}


def skipped(reason: str) -> Callable[..., None]:
    @unittest.skip(reason)
    def test(self: unittest.TestCase) -> None:
        """Excluded."""

    return test


def make_class(prefix: str, pool: str, contract_name: str, contract: type) -> type:
    overrides: dict[str, Any] = {"pool": pool}
    for name, reason in EXCLUDED.items():
        if hasattr(contract, name):
            overrides[name] = skipped(reason)
    class_name = f"Test{prefix}{pool.capitalize()}{contract_name}"
    return type(class_name, (contract, CeleryMixin, cpython.BaseTestCase), overrides)


def crossed(prefix: str, pools: Iterable[str]) -> dict[str, type]:
    """Every contract crossed with every pool, as test classes by name (for a test module's globals)."""
    classes = [make_class(prefix, pool, name, contract) for pool in pools for name, contract in CONTRACTS.items()]
    return {cls.__name__: cls for cls in classes}
