"""Claim a task before it runs, announce STARTED only after winning, and mark a task held on receipt.

Every task of an app that installed the extension runs through :func:`claim_or_skip` first: the worker's
bootstep wraps each task class's ``before_start`` (the hook Celery's tracer calls right before the task
body, in the process that runs it) once, before the pool starts. Wrapping the class rather than asking for
a base class means the user's own tasks take part as they are, whatever base they declare; Celery's own
``task_annotations`` do the same kind of wrapping, but let only one annotation apply per task, which would
silently drop a user's own.

Celery's ``task_track_started`` publishes STARTED *before* ``before_start``, so a task that then lost its
claim to a client's cancel would already look started. The wrapped classes turn Celery's tracking off and
the claim script publishes STARTED itself, only for the winner (``celery_futures/protocol/claims.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from celery import Task, states
from celery.exceptions import Ignore
from celery.signals import task_received
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from celery_futures.protocol.backend import backend_redis
from celery_futures.protocol.claims import Owner, StartClaim, StartedState, claim_for_start, hold_on_receipt
from celery_futures.protocol.errors import RedisDataLostError
from celery_futures.protocol.installation import result_ttl_of
from celery_futures.protocol.replication import fence_of
from celery_futures.worker.identity import boot_id, current_pool_name, execution_context
from celery_futures.worker.receipt import held_on_receipt

logger = logging.getLogger(__name__)

CLAIMED: Final = "__celery_futures_claimed__"
"""Set on a wrapped ``before_start`` (and so visible on every class that has it)."""
CELERY_BUILTIN: Final = "celery."
"""Celery's own tasks (``celery.chord_unlock``...) are sent by Celery, never by a client: left alone."""

OUTAGE_RETRY = Retry(ExponentialBackoff(cap=5.0, base=0.25), retries=30)
"""A message is acknowledged before its claim, so a claim that fails for a Redis restart must not drop it:
retry for about two minutes (30 tries, backoff capped at 5 s), as long as Celery retries storing results."""

BeforeStart = Callable[[Task, str, tuple[Any, ...], dict[str, Any]], None]  # type: ignore[type-arg]


def is_claimed(task: Any) -> bool:
    return bool(getattr(getattr(task, "before_start", None), CLAIMED, False))


def claim_tasks(app: Any) -> int:
    """Wrap every task of ``app`` not yet wrapped (Celery's own excepted); returns how many were."""
    wrapped = 0
    for name, task in app.tasks.items():
        if not name.startswith(CELERY_BUILTIN) and not is_claimed(task):
            claim_task_class(type(task))
            wrapped += 1
    return wrapped


def claim_task_class(cls: type[Task]) -> None:  # type: ignore[type-arg]
    """Make ``cls`` claim before it runs, then run its own ``before_start``; STARTED comes from the claim."""
    original: BeforeStart = cls.before_start

    def before_start(self: Task, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:  # type: ignore[type-arg]
        claim_or_skip(self, task_id)
        original(self, task_id, args, kwargs)

    setattr(before_start, CLAIMED, True)
    before_start.__doc__ = original.__doc__
    cls.before_start = before_start  # type: ignore[method-assign]
    cls.track_started = False


def claim_or_skip(task: Task, task_id: str) -> None:  # type: ignore[type-arg]
    """Win the claim (and announce STARTED), or do not run: ``Ignore`` when it was cancelled first or started
    before, ``RedisDataLostError`` (the task's outcome) when its claim was lost with Redis's data.

    Behind Sentinel a won claim counts only once a replica has it (``celery_futures/protocol/replication.py``):
    until then a failover could lose it and let a cancel win against the running task, so the body waits,
    and an unconfirmed claim is retried like an outage (on the new master after a failover).

    An eager call (``task.apply()``) runs here and now, with no message to claim: it is not claimed."""
    if task.request.is_eager:
        return
    owner = Owner(current_pool_name(), task.request.hostname or "unknown", boot_id() or "")
    started = started_state(task, task_id)
    failed: list[BaseException] = []

    def on_failure(exc: BaseException) -> None:
        failed.append(exc)
        logger.warning("task %s: Redis unreachable or unconfirmed while claiming it (%s); retrying", task_id, exc)

    def attempt() -> StartClaim:
        client = backend_redis(task.app)
        claim = claim_for_start(client, task_id, owner, result_ttl_of(task.app), started, retry=bool(failed))
        if claim is StartClaim.WON:
            fence_of(task.app).require(client)
        return claim

    claim = OUTAGE_RETRY.call_with_retry(attempt, on_failure)
    if claim is StartClaim.CANCELLED:
        skip_cancelled(task, task_id)
    if claim is StartClaim.MISSING:
        raise RedisDataLostError(
            f"task {task_id} was not run: its claim in Redis is gone, lost with Redis's data (a restart without "
            f"persistence, or a flush) after worker {owner.node} took it, so whether it was cancelled meanwhile "
            "cannot be known")
    if claim is StartClaim.ALREADY_STARTED:
        logger.warning("task %s[%s] started before; not running it twice", task.name, task_id)
        raise Ignore()


def started_state(task: Task, task_id: str) -> StartedState:  # type: ignore[type-arg]
    """The STARTED record exactly as Celery's ``store_result`` would write it (its own meta builder)."""
    backend: Any = task.backend
    meta = backend._get_result_meta(result=execution_context(task.request.hostname), state=states.STARTED,
                                    traceback=None, request=task.request)
    meta["task_id"] = task_id
    return StartedState(backend.get_key_for_task(task_id).decode(), backend.encode(meta), result_ttl_of(task.app))


def skip_cancelled(task: Task, task_id: str) -> None:  # type: ignore[type-arg]
    """The client cancelled first: record REVOKED for Flower and the backend, and do not run."""
    logger.info("task %s[%s] was cancelled before it started; skipping it", task.name, task_id)
    task.send_event("task-revoked", terminated=False, signum=None, expired=False)
    task.backend.mark_as_revoked(task_id, "cancelled before start", request=task.request)
    raise Ignore()


@task_received.connect
def _hold_on_receipt(request: Any = None, **_: Any) -> None:
    """Mark the task held by this worker as soon as its message is taken off the queue (before the ack), so
    a client can take it back if this worker dies before starting it (``celery_futures/protocol/claims.py``).
    Tasks of apps that did not install the extension are not wrapped, and not touched here either."""
    task = getattr(request, "task", None)
    if request is None or task is None or not is_claimed(task) or held_on_receipt(getattr(request, "message", None)):
        return  # kombu's receipt pipeline wrote the mark already
    owner = Owner(current_pool_name(), request.hostname or "unknown", boot_id() or "")
    try:
        hold_on_receipt(backend_redis(task.app), request.id, owner, result_ttl_of(task.app))
    except RedisError as exc:
        logger.warning("task %s: could not mark it held (%s); without the mark it will not run, and its outcome "
                       "will be a RedisDataLostError", request.id, exc)
