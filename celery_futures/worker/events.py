"""Task events leave a worker in batches: one PUBLISH per interval, not one or more per task.

Celery's worker publishes every task event (received, started, succeeded...) for monitors such as Flower,
each publish a Redis round trip its loop waits for. Where it runs an event loop (prefork, threads, solo) it
buffers them only until the loop's next turn, which merges few (measured on our prefork worker at prefetch
1: 2.4 event PUBLISHes per no-op task, the largest share of its main process's busy time); on gevent it does
not buffer at all, three round trips per task. This consumer bootstep keeps Celery's own buffer (its
``task`` group, flushed as one ``task.multi`` message, which Flower and every Celery event receiver read)
and flushes it from the worker's own timer ``celery_futures_event_flush_seconds`` after the first event waits
(default 0.01; read and checked by ``celery_futures/protocol/settings.py``), or at once when it holds
Celery's buffer limit (24 events). A monitor sees a task event that much later. Measured with no-ops on 2 cores, CPU per
task of the process that runs the loop: prefork's main process 1.54 ms without, 1.00 with (stock Celery's
1.02); gevent's 2.42 without, 1.64 with (stock Celery's with a thread-safe backend 1.82).

Events are monitoring only: futures are completed from the result backend and the claim, never from an
event, so no promise changes. ``0`` leaves Celery's own flushing as it is.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from celery import bootsteps
from vine import promise

from celery_futures.protocol.settings import event_flush_seconds_of

logger = logging.getLogger(__name__)

TASK_GROUP: Final = "task"


class FlushTimer:
    """Arms one flush of a dispatcher's task events on the worker's timer when the first one waits.

    Where the worker has an event loop, every buffered event goes through the loop's ``call_soon``, as
    Celery's own flushing does: from a threads-pool thread that also wakes the loop, which is how the loop
    learns at once that a slot is free and fetches the next message (without it, a threads worker that
    reserves no more than its slots waited up to a second per slot: 400 sleeps of 50 ms took 29.5 s instead
    of 2.1, measured). The loop itself then arms the timer, once per batch, so the flag needs no lock. On
    gevent (no loop) the timer is armed directly.
    """

    def __init__(self, dispatcher: Any, timer: Any, seconds: float, call_soon: Any = None) -> None:
        self._dispatcher, self._timer, self._seconds = dispatcher, timer, seconds
        self._call_soon = call_soon
        self._arm_soon = promise(self._arm)  # one object, so the loop's ready set holds it once
        self._armed = False

    def schedule(self) -> None:
        """Celery's ``on_send_buffered`` hook, called after each buffered event."""
        if self._call_soon is not None:
            self._call_soon(self._arm_soon)
        else:
            self._arm()

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            self._timer.call_after(self._seconds, self.flush)

    def flush(self) -> None:
        self._armed = False  # before the flush copies the buffer: an event buffered during it arms the next
        try:
            self._dispatcher.flush()
        except Exception as exc:  # Redis away: Celery keeps what it could not send for its next flush
            logger.debug("celery_futures: task events not flushed (%s)", exc)


class EventBatching(bootsteps.StartStopStep):
    """Added to an installed app's consumer blueprint; runs each time the consumer (re)starts its events."""

    label = "celery_futures.events"
    requires = ("celery.worker.consumer.events:Events",)

    def start(self, parent: Any) -> None:
        dispatcher, seconds = parent.event_dispatcher, event_flush_seconds_of(parent.app.conf)
        if dispatcher is None or not seconds:
            return
        hub = getattr(parent, "hub", None)
        flusher = FlushTimer(dispatcher, parent.timer, seconds, hub.call_soon if hub is not None else None)
        dispatcher.buffer_group = frozenset({TASK_GROUP})
        dispatcher.on_send_buffered = flusher.schedule
