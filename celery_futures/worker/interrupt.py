"""``checkpoint()``: where a running task lets a client stop it, on every pool.

prefork can signal a child and gevent can kill a greenlet, but threads and solo cannot stop code that runs;
there the only way is a flag the task looks at. ``future.interrupt()`` always raises the flag, so a task that
calls ``checkpoint()`` now and then stops on every pool.
"""

from __future__ import annotations

import logging

from celery import current_task
from redis.exceptions import RedisError

from celery_futures.protocol.backend import backend_redis
from celery_futures.protocol.claims import interrupt_requested
from celery_futures.protocol.errors import TaskInterruptedError

logger = logging.getLogger(__name__)


def checkpoint() -> None:
    """Raise :class:`TaskInterruptedError` if a client asked the running task to stop (the cooperative flag).

    Cheap enough to call every few milliseconds (one EXISTS). Outside a task it does nothing. On threads and
    solo this is the only way a running task can be stopped; code that never calls it runs to the end.
    """
    task = current_task
    task_id = task.request.id if task else None
    if not task_id:
        return
    try:
        requested = interrupt_requested(backend_redis(task.app), task_id)
    except RedisError as exc:  # a Redis restart must not fail the task; the next checkpoint asks again
        logger.warning("task %s: cannot read its interrupt flag (%s)", task_id, exc)
        return
    if requested:
        raise TaskInterruptedError(f"task {task_id} was interrupted on request")
