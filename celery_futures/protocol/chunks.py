"""A chunk: several calls of one function in one Celery message, and what comes back for each of them.

``executor.map(fn, items, chunksize=N)`` sends ``celery_futures.chunk(calls)`` with ``calls`` a list of
``[name, args, kwargs]`` (``name`` a task's name, or the runner's with ``[target, args, kwargs]`` as its
arguments, exactly as a single call would go). The worker runs them in order inside the one task and
answers a list with one outcome per call, up to and including the first failure: ``{"result": value}``
or ``{"error": {exc_type, exc_module, exc_message}, "traceback": text}`` (the shape Celery stores for a
failed task), so each item ends as it would alone. A chunk is one task for everything else: one claim
(it is cancelled, or it starts, as a whole), one lost policy, one row in Flower.
"""

from __future__ import annotations

from typing import Any, Final

CHUNK_TASK: Final = "celery_futures.chunk"
RESULT: Final = "result"
ERROR: Final = "error"
TRACEBACK: Final = "traceback"


def call_item(name: str, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    return [name, args, kwargs]


def success(value: Any) -> dict[str, Any]:
    return {RESULT: value}


def failure(exc: BaseException, traceback_text: str) -> dict[str, Any]:
    """Celery's own ``prepare_exception`` shape for JSON, with the traceback beside it."""
    return {ERROR: {"exc_type": type(exc).__name__, "exc_module": type(exc).__module__,
                    "exc_message": [str(arg) if not isinstance(arg, int | float | str | bool) else arg
                                    for arg in exc.args]},
            TRACEBACK: traceback_text}
