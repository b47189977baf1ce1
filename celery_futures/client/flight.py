"""An executor's futures from ``submit`` to done: registered, waiting for a slot, sent; under one lock.

``max_workers`` bounds how many are sent and unfinished at once; the rest wait here in submission order,
where cancelling one costs nothing. Every part of the executor (sending, cancelling, recovery, map
batching) changes this table only through these methods, each of which takes the lock itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from celery_futures.client.future import CeleryFuture

Sendable = tuple[CeleryFuture, Any]
"""A future and its call (``celery_futures.client.calls.TaskCall``), taken off the waiting line to be sent."""


class Flight:
    def __init__(self, max_workers: int | None) -> None:
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._outstanding: dict[str, CeleryFuture] = {}
        self._unsent: OrderedDict[str, Sendable] = OrderedDict()
        self._in_flight = 0
        self._closed = False
        self._local = threading.local()  # per thread: how deep it is in loops that complete futures

    # -- intake ---------------------------------------------------------------------------------------------
    def add(self, future: CeleryFuture, call: Any, *, hold: bool = False) -> list[Sendable]:
        """Register ``future`` and queue its call; return what may be sent now (nothing when ``hold``).

        Refused with RuntimeError once :meth:`close` has run, decided under the lock so that a concurrent
        ``shutdown()`` either sees this future or refuses it.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._outstanding[future.task_id] = future
            self._unsent[future.task_id] = (future, call)
            return [] if hold else self._take()

    def close(self) -> None:
        """Refuse new futures from now on."""
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self) -> list[Sendable]:
        """Pop as many queued calls as free slots allow."""
        with self._lock:
            return self._take()

    def _take(self) -> list[Sendable]:
        free = len(self._unsent) if self.max_workers is None else self.max_workers - self._in_flight
        taken = []
        while free > 0 and self._unsent:
            _, (future, call) = self._unsent.popitem(last=False)
            future.sent = True
            taken.append((future, call))
            free -= 1
        self._in_flight += len(taken)
        return taken

    # -- changes ------------------------------------------------------------------------------------------
    def withdraw(self, task_id: str) -> bool:
        """Take a not yet sent call off the waiting line; True if it was there (then it never goes out)."""
        with self._lock:
            return self._unsent.pop(task_id, None) is not None

    def withdraw_all(self, futures: list[CeleryFuture] | None = None) -> list[CeleryFuture]:
        """Take ``futures`` (default: every waiting one) off the waiting line; returns those that were on it."""
        with self._lock:
            if futures is None:
                taken = [future for future, _ in self._unsent.values()]
                self._unsent.clear()
                return taken
            return [f for f in futures if self._unsent.pop(f.task_id, None) is not None]

    def finished(self, future: CeleryFuture) -> list[Sendable]:
        """``future`` is done: free its slot and return what may be sent in its place.

        A dict never shrinks its table: once the last of 20,000 outstanding futures is gone, a fresh one
        replaces it, so a burst does not keep its ~1 MB of empty slots for the executor's life (measured).
        """
        with self._lock:
            self._outstanding.pop(future.task_id, None)
            if future.sent:
                self._in_flight -= 1
            if not self._outstanding:
                self._outstanding = {}
            if not self._unsent:
                self._unsent = OrderedDict()
            return self._take()

    def repoint(self, future: CeleryFuture, task_id: str) -> str:
        """File ``future`` under a new task id (it is being sent again); returns the old one."""
        with self._lock:
            self._outstanding.pop(future.task_id, None)
            old, future.task_id = future.task_id, task_id
            self._outstanding[task_id] = future
            return old

    # -- views --------------------------------------------------------------------------------------------
    def lookup(self, task_id: str) -> CeleryFuture | None:
        """The outstanding future of ``task_id`` (the listener asks, for every message)."""
        return self._outstanding.get(task_id)

    def sent(self) -> list[CeleryFuture]:
        with self._lock:
            return [f for f in self._outstanding.values() if f.sent]

    def outstanding(self) -> list[CeleryFuture]:
        with self._lock:
            return list(self._outstanding.values())

    def idle(self) -> bool:
        """Closed, with nothing outstanding: the executor can let its connections go."""
        with self._lock:
            return self._closed and not self._outstanding

    # -- who completes futures ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def completing(self) -> Iterator[None]:
        """Mark this thread as completing futures in a loop (their callbacks run here, mid-loop), so that a
        ``shutdown(wait=True)`` called from one of those callbacks knows waiting would deadlock."""
        depth = getattr(self._local, "completing", 0)
        self._local.completing = depth + 1
        try:
            yield
        finally:
            self._local.completing = depth

    def completing_here(self) -> bool:
        return bool(getattr(self._local, "completing", 0))

    def fail_all(self, error: BaseException) -> None:
        """End every outstanding future with ``error``; waiting calls are dropped, never to be sent."""
        self.withdraw_all()
        with self.completing():
            for future in self.outstanding():
                future.resolve(exception=error)
