"""Demo tasks, each showing why a pool wins or loses. Workers, tests and the lab's producer import this module.

They are plain ``@app.task`` functions; the app installed ``celery_futures``, so ``cancel()`` is exact for all
of them and the long ones call ``checkpoint()`` so that ``interrupt()`` stops them on every pool.
"""

from __future__ import annotations

import builtins
import socket
import sys
import threading
import time
from typing import Any

from celery import Task

from celery_futures import checkpoint
from celery_futures.protocol.backend import backend_redis
from celery_futures.protocol.keys import STATE_PROGRESS
from celery_futures.worker.identity import execution_context
from worker import constants as c
from worker import functions
from worker.app import app
from worker.errors import DemoError


@app.task
def noop() -> None:
    """Nothing at all: measures the framework's own cost per task."""


@app.task
def cpu_bound(n: int) -> int:
    """Pure-Python work of size ``n``; holds the GIL, so only prefork runs several at once."""
    return functions.spin(n)


@app.task
def io_sleep(seconds: float) -> float:
    """A blocking ``time.sleep``: threads overlap it; gevent overlaps it only when patched."""
    time.sleep(seconds)
    return seconds


@app.task
def io_redis_wait(seconds: float) -> float:
    """A real socket round trip that waits in Redis (BLPOP on a key nobody fills) for ``seconds``.

    Redis resolves BLPOP timeouts on its own timer (``hz``, 10 by default), so short waits round up to about
    100 ms; the task returns how long it really waited.
    """
    started = time.monotonic()
    backend_redis(app).blpop([f"{c.GATE_PREFIX}__never__"], timeout=seconds)
    return time.monotonic() - started


@app.task
def block_unpatched(seconds: float) -> float:
    """Sleep with the OS's own ``time.sleep`` even on gevent: the whole worker's loop stops meanwhile.

    What any unpatched blocking call (a C extension's socket, a busy loop) does to every other greenlet.
    """
    original_sleep(seconds)
    return seconds


@app.task
def fail(exc_type: str, message: str) -> None:
    """Raise the builtin exception named ``exc_type`` (``ValueError``...) with ``message``."""
    cls = getattr(builtins, exc_type, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        raise ValueError(f"{exc_type!r} is not a builtin exception type")
    raise cls(message)


@app.task
def fail_custom(message: str) -> None:
    """Raise our own :class:`~worker.errors.DemoError`, to show custom types survive the trip."""
    raise DemoError(message)


@app.task
def slow(seconds: float, check_every: float = 0.05) -> float:
    """Run for ``seconds``, checking the interrupt flag every ``check_every`` seconds."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        checkpoint()
        time.sleep(min(check_every, left))
    return seconds


@app.task(bind=True)
def progress(self: Task, total: int, step_seconds: float = 0.0) -> int:  # type: ignore[type-arg]
    """Publish ``PROGRESS`` with ``{"current": i, "total": total}`` after each of ``total`` steps."""
    for current in range(1, total + 1):
        if step_seconds:
            time.sleep(step_seconds)
        checkpoint()
        self.update_state(state=STATE_PROGRESS, meta={"current": current, "total": total})
    return total


@app.task
def gate(name: str, timeout: float = 60.0) -> str:
    """Block until someone LPUSHes to ``cfx:gate:<name>``, return what they pushed; never waits for ever."""
    popped = backend_redis(app).blpop([f"{c.GATE_PREFIX}{name}"], timeout=timeout)
    if popped is None:
        raise TimeoutError(f"gate {name!r} was not released within {timeout}s")
    value = popped[1]
    return value.decode() if isinstance(value, bytes) else str(value)


@app.task
def record(name: str) -> int:
    """Count one run under ``cfx:record:<name>`` (INCR): the side effect that proves a task ran."""
    return int(backend_redis(app).incr(f"{c.RECORD_PREFIX}{name}"))


@app.task(bind=True)
def whoami(self: Task) -> dict[str, Any]:  # type: ignore[type-arg]
    """Where this task ran, and whether blocking primitives are gevent's here."""
    return {**execution_context(self.request.hostname), "patched": patch_report()}


def original_sleep(seconds: float) -> None:
    """The OS's ``time.sleep``, bypassing gevent's patch when there is one: blocks the whole thread."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        monkey.get_original("time", "sleep")(seconds)
    else:
        time.sleep(seconds)


def patch_report() -> dict[str, str]:
    """Which module provides the blocking primitives here: ``gevent...`` once monkey-patched."""
    return {
        "socket.socket": socket.socket.__module__,
        "time.sleep": time.sleep.__module__,
        "threading.Lock": type(threading.Lock()).__module__,
    }
