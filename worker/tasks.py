"""Demo tasks, each showing why a pool wins or loses. Workers, tests and the producer import this module.

Every task uses :class:`~worker.base_task.ClaimedTask`, so ``cancel()`` is exact for all of them.
"""

from __future__ import annotations

import builtins
import os
import time
from functools import cache
from typing import Any

from celery import Task

from worker import constants as c
from worker import functions
from worker.allowlist import Allowlist
from worker.app import app, redis_of
from worker.base_task import ClaimedTask, checkpoint
from worker.errors import DemoError
from worker.identity import execution_context, original_sleep, patch_report
from worker.runner import checked_arguments, resolve_allowed
from worker.wire import to_wire


@app.task(base=ClaimedTask)
def noop() -> None:
    """Nothing at all: measures the framework's own cost per task."""


@app.task(base=ClaimedTask)
def cpu_bound(n: int) -> int:
    """Pure-Python work of size ``n``; holds the GIL, so only prefork runs several at once."""
    return functions.spin(n)


@app.task(base=ClaimedTask)
def io_sleep(seconds: float) -> float:
    """A blocking ``time.sleep``: threads overlap it; gevent overlaps it only when patched."""
    time.sleep(seconds)
    return seconds


@app.task(base=ClaimedTask)
def io_redis_wait(seconds: float) -> float:
    """A real socket round trip that waits in Redis (BLPOP on a key nobody fills) for ``seconds``.

    Redis resolves BLPOP timeouts on its own timer (``hz``, 10 by default), so short waits round up to about
    100 ms; the task returns how long it really waited.
    """
    started = time.monotonic()
    redis_of(app).blpop([f"{c.GATE_PREFIX}__never__"], timeout=seconds)
    return time.monotonic() - started


@app.task(base=ClaimedTask)
def block_unpatched(seconds: float) -> float:
    """Sleep with the OS's own ``time.sleep`` even on gevent: the whole worker's loop stops meanwhile.

    What any unpatched blocking call (a C extension's socket, a busy loop) does to every other greenlet.
    """
    original_sleep(seconds)
    return seconds


@app.task(base=ClaimedTask)
def fail(exc_type: str, message: str) -> None:
    """Raise the builtin exception named ``exc_type`` (``ValueError``...) with ``message``."""
    cls = getattr(builtins, exc_type, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        raise ValueError(f"{exc_type!r} is not a builtin exception type")
    raise cls(message)


@app.task(base=ClaimedTask)
def fail_custom(message: str) -> None:
    """Raise our own :class:`~worker.errors.DemoError`, to show custom types survive the trip."""
    raise DemoError(message)


@app.task(base=ClaimedTask)
def slow(seconds: float, check_every: float = 0.05) -> float:
    """Run for ``seconds``, checking the interrupt flag every ``check_every`` seconds."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        checkpoint()
        time.sleep(min(check_every, left))
    return seconds


@app.task(base=ClaimedTask, bind=True)
def progress(self: Task, total: int, step_seconds: float = 0.0) -> int:  # type: ignore[type-arg]
    """Publish ``PROGRESS`` with ``{"current": i, "total": total}`` after each of ``total`` steps."""
    for current in range(1, total + 1):
        if step_seconds:
            time.sleep(step_seconds)
        checkpoint()
        self.update_state(state=c.STATE_PROGRESS, meta={"current": current, "total": total})
    return total


@app.task(base=ClaimedTask)
def gate(name: str, timeout: float = 60.0) -> str:
    """Block until someone LPUSHes to ``cfx:gate:<name>``, return what they pushed; never waits for ever."""
    popped = redis_of(app).blpop([f"{c.GATE_PREFIX}{name}"], timeout=timeout)
    if popped is None:
        raise TimeoutError(f"gate {name!r} was not released within {timeout}s")
    value = popped[1]
    return value.decode() if isinstance(value, bytes) else str(value)


@app.task(base=ClaimedTask)
def record(name: str) -> int:
    """Count one run under ``cfx:record:<name>`` (INCR): the side effect that proves a task ran."""
    return int(redis_of(app).incr(f"{c.RECORD_PREFIX}{name}"))


@app.task(base=ClaimedTask, bind=True)
def whoami(self: Task) -> dict[str, Any]:  # type: ignore[type-arg]
    """Where this task ran, and whether blocking primitives are gevent's here."""
    return {**execution_context(self.request.hostname), "patched": patch_report()}


@cache
def worker_allowlist() -> Allowlist:
    return Allowlist.parse(os.environ.get(c.ENV_ALLOWLIST))


@app.task(base=ClaimedTask, name="worker.tasks.call")
def call(target: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """The generic runner: call the plain function ``module:qualname`` if the allowlist admits it.

    The result goes back only if it arrives unchanged (the same rule as arguments, :mod:`worker.wire`);
    otherwise the task fails with a TypeError that says where in the result the problem is.
    """
    function = resolve_allowed(target, worker_allowlist())
    args, kwargs = checked_arguments(args, kwargs)
    return to_wire(function(*args, **kwargs), "the result", target)
