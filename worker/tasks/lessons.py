"""Tasks only the lessons need (``python -m producer lesson NAME``): each makes one concurrency fact observable.

* ``yield_trace``: the textbook gevent ``foo``/``bar``; two tasks meet in one worker process, then record their
  lines with a process-wide sequence number, yielding (``gevent.sleep(0)``) between lines or not.
* ``ticker``: a greenlet (or thread) that sleeps in short steps and measures how late it wakes up, so a
  neighbour that blocks the gevent hub shows up as the others' latency.
* ``count_up`` / ``count_read`` / ``count_up_redis``: a read-modify-write on a counter in the worker's own
  memory, with or without a ``threading.Lock``, and the atomic Redis ``INCR`` next to it.
* ``work``: a running task to interrupt, which checks its flag, only sleeps, or only computes; it marks
  ``cfx:record:<mark>`` when its body finishes, so the lesson can tell "stopped" from "ran to the end"
  whatever the future says.

Everything here stays importable on every pool: gevent is used only by a worker that already loaded it.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from typing import Any

from celery_futures import checkpoint
from celery_futures.protocol.backend import backend_redis
from worker import constants as c
from worker import functions
from worker.app import app

WORK_KINDS = ("checks-flag", "sleeps", "computes")
"""What ``work`` does while it runs: polls its interrupt flag, blocks in ``time.sleep``, or spins the CPU."""

_sequence = itertools.count()
"""Process-wide order of trace lines: next() on it is atomic under the GIL and under gevent."""
_barriers: dict[str, tuple[int, threading.Event]] = {}
_barriers_lock = threading.Lock()
_counters: dict[str, int] = {}
"""The lessons' shared counters, in this process's memory only (a prefork child has its own)."""
_counters_lock = threading.Lock()


def cooperative_yield() -> None:
    """``gevent.sleep(0)`` on a gevent worker (let every other ready greenlet run), ``time.sleep(0)`` elsewhere."""
    if "gevent.monkey" in sys.modules:
        import gevent

        gevent.sleep(0)
    else:
        time.sleep(0)


def meet(name: str, parties: int, timeout: float) -> bool:
    """Wait until ``parties`` tasks of this process have arrived at barrier ``name``; False on timeout.

    The last to arrive opens the barrier and then yields once, so the tasks that waited run first, in the
    order they arrived: the trace starts with the first task, like the textbook ``foo``.
    """
    with _barriers_lock:
        arrived, event = _barriers.get(name) or (0, threading.Event())
        arrived += 1
        _barriers[name] = (arrived, event)
        last = arrived >= parties
        if last:
            event.set()
            del _barriers[name]
    if last:
        cooperative_yield()
        return True
    return event.wait(timeout)


@app.task
def yield_trace(barrier: str, parties: int, label: str, lines: list[str], *, switch: bool,
                timeout: float = 30.0) -> dict[str, Any]:
    """Meet the other ``parties - 1`` tasks, then record ``lines`` in order, yielding between them if ``switch``.

    Nothing between two lines does IO, so the only places another greenlet can run are the yields: the
    trace shows cooperative switching and nothing else.
    """
    met = meet(barrier, parties, timeout)
    steps = []
    for line in lines:
        steps.append([next(_sequence), label, line])
        if switch:
            cooperative_yield()
    return {"pid": os.getpid(), "met": met, "steps": steps}


@app.task
def ticker(stop_gate: str, interval: float, max_seconds: float = 60.0) -> dict[str, Any]:
    """Sleep ``interval`` again and again until ``cfx:gate:<stop_gate>`` has an item; return each wake-up's delay.

    On gevent the sleep is cooperative, so a ticker wakes late only when something keeps the hub from
    running: the delays (in ms) measure what a neighbour does to every other greenlet.
    """
    client = backend_redis(app)
    delays: list[float] = []
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and client.lpop(f"{c.GATE_PREFIX}{stop_gate}") is None:
        started = time.monotonic()
        time.sleep(interval)
        delays.append(round((time.monotonic() - started - interval) * 1000, 2))
    return {"pid": os.getpid(), "delays_ms": delays}


def unsafe_increment(name: str, pause: bool) -> None:
    """``counter += 1`` as three steps: read, (maybe let another thread or greenlet run), write back."""
    value = _counters.get(name, 0)
    if pause:
        cooperative_yield()
    _counters[name] = value + 1


@app.task
def count_up(name: str, times: int, *, locked: bool, pause: bool = True, barrier: str = "",
             parties: int = 1, timeout: float = 30.0) -> dict[str, Any]:
    """Add 1 to this process's counter ``name``, ``times`` times, under ``threading.Lock`` if ``locked``.

    With a ``barrier``, ``parties`` tasks of this process first wait for each other, so they really count at
    the same time (a task that started late would otherwise find the others done). Returns this process's
    id and the counter's value when this task finished (per process: a prefork child has its own memory,
    so its counter only ever sees its own tasks).
    """
    if barrier:
        meet(barrier, parties, timeout)
    for _ in range(times):
        if locked:
            with _counters_lock:
                unsafe_increment(name, pause)
        else:
            unsafe_increment(name, pause)
    return {"pid": os.getpid(), "value": _counters.get(name, 0)}


@app.task
def count_read(name: str) -> dict[str, Any]:
    """This process's counter ``name`` (and forget it: each lesson run uses a fresh name)."""
    with _counters_lock:
        value = _counters.pop(name, 0)
    return {"pid": os.getpid(), "value": value}


@app.task
def count_up_redis(name: str, times: int) -> int:
    """Add 1 to ``cfx:record:<name>`` ``times`` times with ``INCR``: atomic in Redis, whoever runs it."""
    client = backend_redis(app)
    value = 0
    for _ in range(times):
        value = int(client.incr(f"{c.RECORD_PREFIX}{name}"))
    client.expire(f"{c.RECORD_PREFIX}{name}", 3600)
    return value


@app.task
def work(kind: str, seconds: float, mark: str) -> float:
    """Run for ``seconds`` doing ``kind`` (see :data:`WORK_KINDS`), then INCR ``cfx:record:<mark>``.

    The mark is the proof that the body ran to its end: an interrupted task never reaches it.
    """
    if kind not in WORK_KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(WORK_KINDS)}")
    started = time.monotonic()
    deadline = started + seconds
    while (left := deadline - time.monotonic()) > 0:
        if kind == "checks-flag":
            checkpoint()
            time.sleep(min(0.05, left))
        elif kind == "sleeps":
            time.sleep(left)
        else:
            functions.spin(20_000)
    client = backend_redis(app)
    client.incr(f"{c.RECORD_PREFIX}{mark}")
    client.expire(f"{c.RECORD_PREFIX}{mark}", 3600)
    return round(time.monotonic() - started, 3)
