"""``map()`` sends its calls together: the submits inside it are held, then go out in pipelined batches.

The stdlib's ``Executor.map`` submits one call at a time; sent one by one, each would be a round trip to
Redis. Inside :meth:`MapBatch.batched` the executor holds each new future instead, and at the end hands them
all to the dispatcher at once. If building any call fails (a bad argument in the tenth item), nothing of the
map is sent: the held futures are cancelled, and the error reaches the caller as the stdlib's would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from celery_futures.client.flight import Flight, Sendable
from celery_futures.client.future import CeleryFuture


class MapBatch:
    def __init__(self, flight: Flight, dispatch: Callable[[list[Sendable]], None],
                 withdraw: Callable[[list[CeleryFuture]], None]) -> None:
        self._flight = flight
        self._dispatch = dispatch
        self._withdraw = withdraw
        self._local = threading.local()  # per thread: the futures held by the map in progress

    def active(self) -> bool:
        """Whether this thread is inside a map, so a new future must be held rather than sent."""
        return getattr(self._local, "futures", None) is not None

    def hold(self, future: CeleryFuture) -> None:
        self._local.futures.append(future)

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Hold the submits made inside, then send them together; on error, send none of them."""
        if self.active():
            yield
            return
        self._local.futures = []
        try:
            yield
        except BaseException:
            futures, self._local.futures = self._local.futures, None
            self._withdraw(futures)
            raise
        self._local.futures = None
        self._dispatch(self._flight.take())
