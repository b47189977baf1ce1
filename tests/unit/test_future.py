"""The future's state machine with a fake driver: only the executor-facing calls move it, and a cancel
is decided by the claim, once."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, wait

import pytest

from celery_futures import CeleryFuture
from celery_futures.protocol.pools import Interrupt


class FakeDriver:
    def __init__(self, claim: bool | None) -> None:
        self.lock = threading.Lock()
        self.claim = claim
        self.claims = 0

    def claim_cancel(self, future: CeleryFuture) -> bool | None:
        self.claims += 1
        return self.claim

    def interrupt(self, future: CeleryFuture) -> Interrupt | None:
        return None


def test_cancel_won_means_cancelled_notified_and_callbacks_ran() -> None:
    driver = FakeDriver(claim=True)
    future = CeleryFuture("t1", driver)
    seen: list[bool] = []
    future.add_done_callback(lambda f: seen.append(f.cancelled()))
    assert future.cancel() is True
    assert future.cancelled() and seen == [True]
    done, _ = wait([future], timeout=0)  # CANCELLED_AND_NOTIFIED: wait() sees it at once
    assert done == {future}
    with pytest.raises(CancelledError):
        future.result(0)
    assert future.cancel() is True and driver.claims == 1  # decided once


def test_cancel_lost_means_running() -> None:
    future = CeleryFuture("t2", FakeDriver(claim=False))
    assert future.cancel() is False
    assert future.running() and not future.cancelled()


def test_cancel_unknown_leaves_it_pending() -> None:
    future = CeleryFuture("t3", FakeDriver(claim=None))
    assert future.cancel() is False
    assert not future.running() and not future.done()


def test_messages_after_a_won_cancel_are_ignored() -> None:
    future = CeleryFuture("t4", FakeDriver(claim=True))
    future.cancel()
    future.mark_started({"pool": "threads"})
    assert future.resolve(result=1) is False
    assert future.cancelled()


def test_started_then_result() -> None:
    future = CeleryFuture("t5", FakeDriver(claim=False))
    future.mark_started({"hostname": "w", "pool": "gevent"})
    assert future.running() and future.execution == {"hostname": "w", "pool": "gevent"}
    assert future.cancel() is False  # running: no claim is even asked
    assert future.resolve(result=42) is True
    assert future.result(0) == 42 and future.resolve(result=43) is False


def test_exception_from_pending() -> None:
    future = CeleryFuture("t6", FakeDriver(claim=False))
    future.resolve(exception=ValueError("v"))
    assert isinstance(future.exception(0), ValueError)


def test_progress_callbacks_and_a_failing_one(caplog: pytest.LogCaptureFixture) -> None:
    future = CeleryFuture("t7", FakeDriver(claim=False))
    seen: list[int] = []
    future.add_progress_callback(lambda f, meta: 1 / 0)
    future.add_progress_callback(lambda f, meta: seen.append(meta["current"]))
    future.report_progress({"current": 1, "total": 2})
    assert seen == [1] and future.progress == {"current": 1, "total": 2}
    assert "exception calling progress callback" in caplog.text


def test_repr_names_the_task() -> None:
    assert "t8" in repr(CeleryFuture("t8", FakeDriver(claim=False)))
