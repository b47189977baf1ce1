"""The task base class every task of ours uses: claim the task, announce STARTED, then run.

Celery's own ``task_track_started`` publishes STARTED *before* ``before_start``, so a task that then lost
its claim to a producer's cancel would already look started. This class turns Celery's tracking off and
publishes STARTED itself, only after it has won the claim (see ``worker/cancellation.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_task, states
from celery.exceptions import Ignore

from worker.app import redis_of, result_ttl_seconds
from worker.cancellation import Owner, StartClaim, claim_for_start, interrupt_requested
from worker.errors import TaskInterruptedError
from worker.heartbeat import boot_id
from worker.identity import current_pool_name, execution_context

logger = logging.getLogger(__name__)


class ClaimedTask(Task):  # type: ignore[type-arg]
    """A task that runs only if it wins the start/cancel race, and says so with its STARTED state."""

    track_started = False

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        owner = Owner(current_pool_name(), self.request.hostname or "unknown", boot_id() or "")
        claim = claim_for_start(redis_of(self.app), task_id, owner, result_ttl_seconds(self.app))
        if claim is StartClaim.CANCELLED:
            self.skip_cancelled(task_id)
        if claim is StartClaim.ALREADY_STARTED:
            logger.warning("task %s[%s] started before; not running it twice", self.name, task_id)
            raise Ignore()
        meta = execution_context(self.request.hostname)
        self.backend.store_result(task_id, meta, states.STARTED, request=self.request)

    def skip_cancelled(self, task_id: str) -> None:
        """The producer cancelled first: record REVOKED for Flower and the backend, and do not run."""
        logger.info("task %s[%s] was cancelled before it started; skipping it", self.name, task_id)
        self.send_event("task-revoked", terminated=False, signum=None, expired=False)
        self.backend.mark_as_revoked(task_id, "cancelled before start", request=self.request)
        raise Ignore()


def checkpoint() -> None:
    """Raise :class:`TaskInterruptedError` if a producer asked the running task to stop (the cooperative flag).

    Cheap enough to call every few milliseconds (one EXISTS). On threads and solo this is the only way a
    running task can be stopped; code that never calls it runs to the end.
    """
    task = current_task
    task_id = task.request.id if task else None
    if task_id and interrupt_requested(redis_of(task.app), task_id):
        raise TaskInterruptedError(f"task {task_id} was interrupted on request")
