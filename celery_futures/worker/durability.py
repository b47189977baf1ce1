"""Behind Sentinel, a task's final state must outlive a failover: confirm it with a replica, or store it again.

Celery stores a result and PUBLISHes it in one pipeline (``RedisBackend._set``). A listener usually has the
PUBLISH long before a failover could matter, but one that was reconnecting at that moment reads the stored
state instead, and a promoted replica that never got it would leave the future running, on a worker that
beats on, for ever. So in the process that ran the task, right after Celery stored the state
(``task_postrun``), the fence (``celery_futures/protocol/replication.py``) waits for a replica; if none
confirms it (the master died first, or the replica lags), the state is stored again, on whatever master
Sentinel names now, through Celery's own ``store_result`` (a SUCCESS already there is kept, as Celery keeps
it), and fenced again, with the claim's outage backoff. A state stored again loses only its traceback text.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from celery import states
from celery.signals import task_postrun

from celery_futures.protocol.backend import backend_redis
from celery_futures.protocol.replication import fence_of
from celery_futures.worker.claiming import OUTAGE_RETRY, is_claimed

logger = logging.getLogger(__name__)

STORED_STATES: Final = frozenset({states.SUCCESS, states.FAILURE})
"""What Celery's tracer stored for the task when it finished (an ignored or skipped task stored nothing)."""


def make_durable(task: Any, task_id: str, retval: Any, state: str) -> None:
    """Until a replica has ``task_id``'s final state: fence, and store it again whenever the fence fails."""
    fence = fence_of(task.app)
    stored_again: list[BaseException] = []

    def store_again(exc: BaseException) -> None:
        stored_again.append(exc)
        logger.warning("task %s: its %s state is not confirmed by a replica (%s); storing it again",
                       task_id, state, exc)
        task.backend.store_result(task_id, retval, state, request=task.request)

    OUTAGE_RETRY.call_with_retry(lambda: fence.require(backend_redis(task.app)), store_again)
    if stored_again:
        logger.warning("task %s: its %s state is confirmed by a replica now (stored %d more time(s))",
                       task_id, state, len(stored_again))


@task_postrun.connect
def _confirm_final_state(sender: Any = None, task_id: str | None = None, retval: Any = None,
                         state: str | None = None, **_: Any) -> None:
    """Runs after every task; acts only for installed apps behind Sentinel, on what the tracer stored."""
    if sender is None or task_id is None or state not in STORED_STATES or not is_claimed(sender):
        return
    if getattr(sender.request, "is_eager", False) or not fence_of(sender.app).enabled:
        return
    try:
        make_durable(sender, task_id, retval, str(state))
    except Exception:  # the task is done: a failure here must not turn into a task error
        logger.exception("task %s: could not confirm its %s state with a replica", task_id, state)
