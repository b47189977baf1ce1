"""Task events leave a worker in batches: one PUBLISH per interval, not one or more per task.

Celery's worker publishes every task event (received, started, succeeded...) for monitors such as Flower,
each publish a Redis round trip its loop waits for. Where it runs an event loop (prefork, threads, solo) it
buffers them only until the loop's next turn, which merges few (measured on our prefork worker at prefetch
1: 2.4 event PUBLISHes per no-op task, the largest share of its main process's busy time); on gevent it does
not buffer at all, three round trips per task. This consumer bootstep keeps Celery's own buffer (its
``task`` group, flushed as one ``task.multi`` message, which Flower and every Celery event receiver read)
and flushes it from the worker's own timer ``celery_futures_event_flush_seconds`` after the first event waits
(default 0.01; read and checked by ``celery_futures/protocol/settings.py``), or at once when it holds
Celery's buffer limit (24 events). A monitor sees a task event that much later once the loop turns (an
event from a threads-pool thread in a lull waits for the loop's next wake-up, at most a second, as Celery's
own buffering does). Measured with no-ops on 2 cores, CPU per
task of the process that runs the loop: prefork's main process 1.54 ms without, 1.00 with (stock Celery's
1.02); gevent's 2.42 without, 1.64 with (stock Celery's with a thread-safe backend 1.82).

Events are monitoring only: futures are completed from the result backend and the claim, never from an
event, so no promise changes. ``0`` leaves Celery's own flushing as it is.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from celery import bootsteps

from celery_futures.protocol.settings import event_flush_seconds_of

logger = logging.getLogger(__name__)

TASK_GROUP: Final = "task"


class FlushTimer:
    """Schedules one flush of a dispatcher's task events on the worker's timer when the first one waits."""

    def __init__(self, dispatcher: Any, timer: Any, seconds: float) -> None:
        self._dispatcher, self._timer, self._seconds = dispatcher, timer, seconds
        self._scheduled = False

    def schedule(self) -> None:
        """Celery's ``on_send_buffered`` hook: called after each buffered event (on a threads pool, from its
        threads: kombu's timer takes entries from other threads, as Celery's own ``call_soon`` does).

        An event buffered while a flush is scheduled rides with it; one buffered after the flush has begun
        schedules the next (the flag is cleared before the flush copies the buffer)."""
        if not self._scheduled:
            self._scheduled = True
            self._timer.call_after(self._seconds, self.flush)

    def flush(self) -> None:
        self._scheduled = False
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
        flusher = FlushTimer(dispatcher, parent.timer, seconds)
        dispatcher.buffer_group = frozenset({TASK_GROUP})
        dispatcher.on_send_buffered = flusher.schedule
