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
from celery.signals import task_received
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from worker.app import redis_of, result_ttl_seconds
from worker.cancellation import (
    Owner,
    StartClaim,
    StartedState,
    claim_for_start,
    hold_on_receipt,
    interrupt_requested,
)
from worker.errors import TaskInterruptedError
from worker.heartbeat import boot_id
from worker.identity import current_pool_name, execution_context
from worker.policies import LostPolicy

logger = logging.getLogger(__name__)


OUTAGE_RETRY = Retry(ExponentialBackoff(cap=5.0, base=0.25), retries=30)
"""A message is acknowledged before its claim, so a claim that fails for a Redis restart must not drop it:
retry for about two minutes (30 tries, backoff capped at 5 s), as long as Celery retries storing results."""


class ClaimedTask(Task):  # type: ignore[type-arg]
    """A task that runs only if it wins the start/cancel race, and says so with its STARTED state."""

    track_started = False
    lost_policy = LostPolicy.FAIL
    """What the producer does if this task's worker dies under it (``worker/policies.py``)."""

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        owner = Owner(current_pool_name(), self.request.hostname or "unknown", boot_id() or "")
        started = self.started_state(task_id)
        failed: list[BaseException] = []

        def on_failure(exc: BaseException) -> None:
            failed.append(exc)
            logger.warning("task %s: Redis unreachable while claiming it (%s); retrying", task_id, exc)

        claim = OUTAGE_RETRY.call_with_retry(
            lambda: claim_for_start(redis_of(self.app), task_id, owner, result_ttl_seconds(self.app), started,
                                    retry=bool(failed)),
            on_failure,
        )
        if claim is StartClaim.CANCELLED:
            self.skip_cancelled(task_id)
        if claim is StartClaim.ALREADY_STARTED:
            logger.warning("task %s[%s] started before; not running it twice", self.name, task_id)
            raise Ignore()

    def started_state(self, task_id: str) -> StartedState:
        """The STARTED record exactly as Celery's ``store_result`` would write it (its own meta builder)."""
        backend: Any = self.backend
        meta = backend._get_result_meta(result=execution_context(self.request.hostname), state=states.STARTED,
                                        traceback=None, request=self.request)
        meta["task_id"] = task_id
        return StartedState(backend.get_key_for_task(task_id).decode(), backend.encode(meta),
                            result_ttl_seconds(self.app))

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
    if not task_id:
        return
    try:
        requested = interrupt_requested(redis_of(task.app), task_id)
    except RedisError as exc:  # a Redis restart must not fail the task; the next checkpoint asks again
        logger.warning("task %s: cannot read its interrupt flag (%s)", task_id, exc)
        return
    if requested:
        raise TaskInterruptedError(f"task {task_id} was interrupted on request")


@task_received.connect
def _hold_on_receipt(request: Any = None, **_: Any) -> None:
    """Mark the task held by this worker as soon as its message is taken off the queue (before the ack), so
    a producer can take it back if this worker dies before starting it (``worker/cancellation.py``)."""
    task = getattr(request, "task", None)
    if request is None or not isinstance(task, ClaimedTask):
        return
    owner = Owner(current_pool_name(), request.hostname or "unknown", boot_id() or "")
    try:
        hold_on_receipt(redis_of(task.app), request.id, owner, result_ttl_seconds(task.app))
    except RedisError as exc:
        logger.warning("task %s: could not mark it held (%s); it runs, but is not recoverable if this worker dies",
                       request.id, exc)
