"""What becomes of a future whose worker died: its task's lost policy, carried out.

The watchdog (or Celery's ``WorkerLostError`` for a killed prefork child) reports a loss; this decides.
A run that had started counts against the policy (``FAIL``: at most once, the future fails; ``RERUN``: one
more run, under a new task id, on any worker). A message that was held or nowhere never ran, so sending it
again is its first run, whatever the policy, up to :data:`~celery_futures.client.watchdog.MAX_RESENDS` times.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery_futures.client.dispatch import Dispatcher
from celery_futures.client.errors import WorkerGoneError
from celery_futures.client.flight import Flight
from celery_futures.client.future import CeleryFuture
from celery_futures.client.watchdog import MAX_RESENDS, Lost, lost_message, may_run_again
from celery_futures.protocol.policies import LostPolicy

logger = logging.getLogger(__name__)


class LostHandler:
    def __init__(self, flight: Flight, dispatcher: Dispatcher, lock: threading.Lock,
                 new_task_id: Callable[[], str], override: LostPolicy | None) -> None:
        """``lock`` is the futures' decision lock (the one ``cancel()`` takes); ``override`` replaces every
        task's own policy for this executor."""
        self._flight = flight
        self._dispatcher = dispatcher
        self._lock = lock
        self._new_task_id = new_task_id
        self._override = override

    def policy_of(self, future: CeleryFuture) -> LostPolicy:
        if self._override is not None:
            return self._override
        return future.call.policy if future.call is not None else LostPolicy.FAIL

    def on_lost(self, lost: Lost) -> None:
        """The future's worker died: follow its policy (send it again, or end it with the reason)."""
        future, policy = lost.future, self.policy_of(lost.future)
        if lost.started:
            future.lost_runs += 1
            retry = may_run_again(policy, future.lost_runs)
        else:
            future.resends += 1
            retry = future.resends <= MAX_RESENDS
        if retry and self.resend(future):
            return
        error = lost.error or WorkerGoneError(lost_message(lost, future.task_id, policy, future.lost_runs))
        with self._flight.completing():
            future.resolve(exception=error)

    def resend(self, future: CeleryFuture) -> bool:
        """Send the future's call again under a new task id (messages for the old id are ignored from now on).

        Re-pointed under the futures' lock, so a concurrent ``cancel()`` claims either the old id (already
        settled) or the new one, never a copy that then runs. False if the future ended meanwhile.
        """
        call = future.call
        with self._lock:
            if future.done() or call is None:
                return False
            old = self._flight.repoint(future, self._new_task_id())
            future.execution = None
        logger.warning("task %s lost with its worker; sent again as %s", old, future.task_id)
        self._dispatcher.send([(future, call)])
        return True
