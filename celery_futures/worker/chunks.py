"""The chunk task (``celery_futures.chunk``): several calls of one function in one message, run in order.

``install(app)`` registers it beside the runner. Each call runs inside the chunk's own task: a task by its
``run`` (so ``checkpoint()`` sees the chunk, and ``interrupt()`` of the chunk stops it between or inside
items), a plain function through the runner's allowlist; each answers its own outcome
(``celery_futures/protocol/chunks.py``), and the first failure ends the chunk. An interrupt stops the whole
chunk. An item runs as the task's body (``task.run``): the request it sees, and any progress it reports, are
the chunk's.
"""

from __future__ import annotations

import traceback
from typing import Any

from celery import Celery

from celery_futures.protocol.chunks import CHUNK_TASK, ERROR, failure, success
from celery_futures.protocol.codec import to_wire
from celery_futures.protocol.errors import TaskInterruptedError
from celery_futures.protocol.keys import RUNNER_TASK
from celery_futures.protocol.settings import ALLOWLIST_SETTING
from celery_futures.worker.runner import allowlist_setting, checked_arguments, resolve_allowed


def register_chunk_task(app: Celery) -> None:
    """Register :data:`~celery_futures.protocol.chunks.CHUNK_TASK` on ``app`` (on this app only)."""

    @app.task(name=CHUNK_TASK, shared=False)
    def chunk(calls: list[Any]) -> list[dict[str, Any]]:
        """Run each ``[name, args, kwargs]`` of ``calls`` in order, one outcome each, up to the first failure
        (as the stdlib's chunk stops at its first exception: the caller's map ends there)."""
        if not isinstance(calls, list):
            raise TypeError(f"a chunk is a list of [name, args, kwargs], not {type(calls).__name__}")
        answered: list[dict[str, Any]] = []
        for item in calls:
            answered.append(outcome(app, item))
            if ERROR in answered[-1]:
                break
        return answered


def outcome(app: Celery, item: Any) -> dict[str, Any]:
    """One call's result or error; an interrupt is not an item's error but the chunk's end."""
    try:
        name, args, kwargs = item
        return success(to_wire(run_one(app, str(name), args, kwargs), "the result", str(name)))
    except TaskInterruptedError:
        raise
    except Exception as exc:
        return failure(exc, traceback.format_exc())


def run_one(app: Celery, name: str, args: Any, kwargs: Any) -> Any:
    args, kwargs = checked_arguments(args, kwargs)
    if name == RUNNER_TASK:
        target, target_args, target_kwargs = args
        function = resolve_allowed(target, allowlist_setting(app.conf.get(ALLOWLIST_SETTING)))
        target_args, target_kwargs = checked_arguments(target_args, target_kwargs)
        return function(*target_args, **target_kwargs)
    task = app.tasks.get(name)
    if task is None or name.startswith("celery."):
        raise LookupError(f"no task {name!r} in app {app.main!r} to run in a chunk")
    return task.run(*args, **kwargs)
