"""``CeleryFuture``: a real ``concurrent.futures.Future`` for one Celery task.

Only the executor's machinery moves its state, and only through the stdlib's executor-facing calls
(``set_running_or_notify_cancel``, ``set_result``, ``set_exception``), the way ``ThreadPoolExecutor``'s
``_WorkItem.run`` does. So ``wait``, ``as_completed``, callbacks and ``asyncio.wrap_future`` work unchanged.

Two threads can try to move a future at once: the executor's listener (STARTED / SUCCESS / FAILURE from
the worker) and a user calling ``cancel()``. The executor's ``lock`` serialises their *decisions*; user
callbacks always run outside it, as the stdlib runs them outside ``_condition``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from celery_futures.protocol.pools import Interrupt

logger = logging.getLogger(__name__)

ProgressCallback = Callable[["CeleryFuture", dict[str, Any]], object]


class Driver(Protocol):
    """What a future needs from its executor."""

    lock: threading.Lock

    def claim_cancel(self, future: CeleryFuture) -> bool | None:
        """True: cancelled before it started (it never runs); False: a worker started it; None: unknown."""

    def interrupt(self, future: CeleryFuture) -> Interrupt | None:
        """Ask the worker running ``future`` to stop it; how it will, or None if it is not running."""


class CeleryFuture(Future[Any]):
    """A future for one Celery task, with its ``task_id`` and where and when it ran."""

    def __init__(self, task_id: str, driver: Driver) -> None:
        super().__init__()
        self.task_id = task_id
        self._driver = driver
        self._cancel_won = False  # a cancel claim won: the task never runs, whatever arrives later
        self._finishing = False  # a final result is being set: later messages are ignored
        self._progress_callbacks: list[ProgressCallback] = []
        self.sent = False
        """Handed to the broker (set by the executor); until then it waits in the executor's own queue."""
        self.call: Any = None
        """The validated call (kept until the future ends, to send it again if its worker dies)."""
        self.route: Any = None
        """Where its message went (the queue the watchdog looks in if its worker dies holding it)."""
        self.lost_runs = 0
        """Started runs lost with their worker; the task's policy says how many it may have."""
        self.resends = 0
        """Times it was taken back from a dead worker that held it unstarted and sent again."""
        self.execution: dict[str, Any] | None = None
        """Where the task runs: hostname, pool, pid, thread, greenlet (the worker's STARTED meta)."""
        self.progress: dict[str, Any] | None = None
        """The latest PROGRESS meta, e.g. ``{"current": 3, "total": 10}``."""
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def __repr__(self) -> str:
        return super().__repr__().replace(" at ", f" {self.task_id} at ", 1)

    # -- user-facing ---------------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Cancel the task if no worker has started it; True means it never runs, anywhere.

        One atomic claim in Redis decides the race with the worker (``celery_futures/protocol/claims.py``). False
        means a worker got there first (the future is then running) or Redis could not be asked.
        """
        return self.settle_cancel(lambda: self._driver.claim_cancel(self))

    def interrupt(self) -> Interrupt | None:
        """Stop a task that is already running, as far as its pool allows; ``cancel()`` refuses those.

        Returns how the worker will stop it (``Interrupt.SIGNAL`` on prefork, ``KILL_GREENLET`` on gevent,
        ``COOPERATIVE`` on threads and solo, where only a task that checks its flag stops), or None when
        the future is not running. A stopped task ends the future with ``TaskInterruptedError``.
        """
        return self._driver.interrupt(self)

    def add_progress_callback(self, fn: ProgressCallback) -> None:
        """Call ``fn(future, meta)`` on the listener thread for each PROGRESS the task publishes."""
        self._progress_callbacks.append(fn)

    # -- executor-facing: only the executor's listener and cancel paths call these -------------------
    def settle_cancel(self, claim: Callable[[], bool | None]) -> bool:
        """Decide a cancel with ``claim`` (unless already decided), then move the future accordingly."""
        with self._driver.lock:
            if self._cancel_won:
                return True
            if self._finishing or self.running() or self.done():
                return self.cancelled()
            won = claim()
            if won is None:
                return False
            if not won:
                self._start()
                return False
            self._cancel_won = True
        super().cancel()
        self.set_running_or_notify_cancel()  # CANCELLED -> CANCELLED_AND_NOTIFIED: wakes wait()/as_completed()
        return True

    def mark_started(self, execution: dict[str, Any]) -> None:
        """The worker won the claim and published STARTED."""
        with self._driver.lock:
            self.execution = execution
            if not (self._cancel_won or self._finishing or self.running() or self.done()):
                self._start()

    def report_progress(self, meta: dict[str, Any]) -> None:
        self.progress = meta
        for callback in list(self._progress_callbacks):
            try:
                callback(self, meta)
            except Exception:
                logger.exception("exception calling progress callback for %r", self)

    def resolve(self, result: Any = None, exception: BaseException | None = None) -> bool:
        """Finish with ``result`` or ``exception`` unless already decided; True if this call finished it."""
        with self._driver.lock:
            if self._cancel_won or self._finishing or self.done():
                return False
            self._finishing = True
            self.finished_at = time.monotonic()
        if exception is not None:
            self.set_exception(exception)
        else:
            self.set_result(result)
        return True

    def _start(self) -> None:
        self.started_at = self.started_at or time.monotonic()
        self.set_running_or_notify_cancel()
