"""``python -m producer lesson futures``: the textbook ``concurrent.futures`` tour, run on the cluster.

The classic example (after PyMOTW) runs ``task(n)`` on ``ThreadPoolExecutor(max_workers=2)``. The same plain function
(``worker.functions.sleep_tenths``) runs here on Celery workers through ``CeleryExecutor(max_workers=2)``,
section by section: ``map``, ``submit`` + ``result``, ``as_completed``, ``add_done_callback`` with its three
branches, ``cancel`` of a queued and of a running task, and ``exception()``. A timeline then shows which
worker, pool, process and thread or greenlet ran every task, and when.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor, Future, as_completed
from typing import Any

from celery_futures import CeleryExecutor, CeleryFuture
from producer.gates import record_count
from producer.lessons.common import (
    TIMEOUT,
    Checks,
    Timeline,
    advance_on_done,
    holding_slots,
    pick_queue,
    require_workers,
)
from producer.session import Session
from producer.terminal import Terminal
from worker.errors import DemoError
from worker.functions import sleep_tenths
from worker.tasks import demo as tasks

PREFERRED_QUEUE = "threads"
"""Without ``--queue``: the threads pool's queue if a worker serves it (its thread names are the textbook's
``ThreadPoolExecutor-0_0``), else the default queue, which plain ``docker compose up`` serves."""

INTRO = """\
# concurrent.futures, over the cluster

The classic example runs `task(n)` (sleep n/10 s, return n/10) on a local `ThreadPoolExecutor(max_workers=2)`. Here the
same plain function runs on Celery workers through `CeleryExecutor(max_workers=2)`: the same contract, with
real processes, threads or greenlets on the other side.

* `map` returns an iterator at once; its results come **in input order**, whatever finishes first.
* `submit` returns a future at once; `result()` waits for it.
* `as_completed` yields the futures **as they finish**: first finished, first out.
* `add_done_callback` runs when the future is done: cancelled, failed, or with a value.
* `cancel()` is True only for a task no worker has started (it then never runs); `exception()` returns
  what the task raised, with its own type.
"""


class Recording(Executor):
    """The lesson's view of an executor: every future it hands out goes on the timeline.

    ``map`` here is ``concurrent.futures.Executor.map`` itself (which ``CeleryExecutor.map`` also runs, only
    batched), driven by this ``submit``, so the lesson sees each of map's futures.
    """

    def __init__(self, inner: CeleryExecutor, timeline: Timeline) -> None:
        self.inner = inner
        self.timeline = timeline
        self.section = ""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> CeleryFuture:
        future = self.inner.submit(fn, *args, **kwargs)
        name = str(getattr(fn, "__name__", fn)).rsplit(".", 1)[-1]
        shown = ", ".join(short(arg) for arg in args)
        return self.timeline.add(f"{self.section} {name}({shown})".strip(), future)

    def futures_since(self, index: int) -> list[CeleryFuture]:
        return [future for _, future in self.timeline.entries[index:]]


def short(value: Any, limit: int = 12) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_futures(session: Session) -> bool:
    """The tour; returns True if every promised fact held."""
    terminal, queue = session.terminal, pick_queue(session, PREFERRED_QUEUE)
    timeline = Timeline()
    notes = Recording(session.executor(queue=queue, max_workers=2), timeline)
    slots = require_workers(session, notes.inner, [queue])
    if slots is None:
        return False
    terminal.explain(INTRO)
    timeline.t0 = time.monotonic()
    checks = Checks(terminal)
    numbers = (3, 2, 1) if session.quick else (5, 4, 3, 2, 1)
    show_map(notes, terminal, checks, numbers)
    show_submit(notes, terminal, checks)
    show_as_completed(notes, terminal, checks, numbers)
    unbounded = Recording(session.executor(queue=queue), timeline)
    show_callbacks_and_cancel(notes, unbounded, slots[queue], terminal, checks)
    show_exception(notes, terminal, checks)
    timeline.show(terminal)
    return checks.finish("futures")


def show_map(notes: Recording, terminal: Terminal, checks: Checks, numbers: Sequence[int]) -> None:
    terminal.line("\n[map] results = ex.map(task, range(...)); real_results = list(results)")
    notes.section, first = "map", len(notes.timeline.entries)
    terminal.line("main: starting")
    started = time.monotonic()
    results = notes.map(sleep_tenths, numbers, timeout=TIMEOUT)
    returned_after = time.monotonic() - started
    futures = notes.futures_since(first)
    finished_at_return = sum(f.done() for f in futures)
    terminal.line(f"main: unprocessed results {results!r} (returned after {returned_after * 1000:.1f} ms, "
                  f"{finished_at_return} of {len(futures)} tasks finished)")
    terminal.line("main: waiting for real results")
    with terminal.progress("map", len(futures)) as advance:
        advance_on_done(futures, advance)
        real = list(results)
    by_finish = [f.result() for f in sorted(futures, key=lambda f: f.finished_at or 0.0)]
    terminal.line(f"main: results: {real} (input order); the tasks finished in the order {by_finish}")
    terminal.record("map", {"results": real, "returned_after_s": returned_after,
                            "finished_when_map_returned": finished_at_return, "finish_order": by_finish})
    checks.check("map results in input order", real == [n / 10 for n in numbers])


def show_submit(notes: Recording, terminal: Terminal, checks: Checks) -> None:
    terminal.line("\n[submit] f = ex.submit(task, 5); f.result()")
    notes.section = "submit"
    terminal.line("main: starting")
    future = notes.submit(sleep_tenths, 5)
    terminal.line(f"main: future: {future!r}")
    terminal.line("main: waiting for results")
    result = future.result(timeout=TIMEOUT)
    terminal.line(f"main: result: {result}")
    terminal.line(f"main: future after result: {future!r}")
    terminal.record("submit", {"result": result})
    checks.check("submit + result returned 0.5", result == 0.5)


def show_as_completed(notes: Recording, terminal: Terminal, checks: Checks, numbers: Sequence[int]) -> None:
    terminal.line("\n[as_completed] for f in as_completed([ex.submit(task, i) for i in ...]): f.result()")
    notes.section = "as_completed"
    started = time.monotonic()
    futures = [notes.submit(sleep_tenths, n) for n in numbers]
    order = []
    for future in as_completed(futures, timeout=TIMEOUT):
        order.append(future.result())
        terminal.line(f"main: result: {future.result()} (+{time.monotonic() - started:.2f}s)")
    terminal.line(f"submitted {[n / 10 for n in numbers]}; as_completed yielded {order}: first finished, first out")
    terminal.record("as_completed", {"submitted": [n / 10 for n in numbers], "completed": order})
    checks.check("as_completed yielded every future once", sorted(order) == sorted(n / 10 for n in numbers))


class CallbackLog:
    """The textbook ``done(fn)`` callback, remembering what it printed and on which producer thread it ran."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.lines: list[tuple[int, str, str]] = []

    def done(self, arg: int, fn: Future[Any]) -> None:
        if fn.cancelled():
            self.say(arg, f"{arg}: canceled")
        elif fn.done():
            error = fn.exception()
            if error:
                self.say(arg, f"{arg}: error returned: {error}")
            else:
                self.say(arg, f"{arg}: value returned: {fn.result()}")

    def say(self, arg: int, line: str) -> None:
        with self.changed:
            self.lines.append((arg, line, threading.current_thread().name))
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        """Wait until ``count`` callbacks have run: they run *after* the future is done, on another thread."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.lines) >= count, timeout=TIMEOUT):
                raise TimeoutError(f"only {len(self.lines)} of {count} callbacks ran")

    def attach(self, future: Future[Any], arg: int) -> None:
        future.add_done_callback(functools.partial(self.done, arg))


def show_callbacks_and_cancel(notes: Recording, unbounded: Recording, slots: int, terminal: Terminal,
                              checks: Checks) -> None:
    terminal.line("\n[add_done_callback + cancel] the textbook done(fn) on a value, an error and a cancel")
    log = CallbackLog()
    notes.section = "callback"
    log.attach(notes.submit(sleep_tenths, 5), 5)
    log.attach(notes.submit(tasks.fail, "ValueError", "task 6 failed on purpose"), 6)
    cancels = cancel_pending_and_running(unbounded, slots, log, terminal, checks)
    log.wait_for(3)
    rows = [[arg, line, thread] for arg, line, thread in sorted(log.lines)]
    terminal.table("callbacks", "Callbacks (the textbook done(fn))", ["arg", "printed", "ran on producer thread"],
                   rows)
    terminal.record("cancel", cancels)
    printed = [line for _, line, _ in log.lines]
    checks.check("callback saw a value", "5: value returned: 0.5" in printed)
    checks.check("callback saw an error", any(line.startswith("6: error returned:") for line in printed))
    checks.check("callback saw a cancel", "7: canceled" in printed)


def cancel_pending_and_running(unbounded: Recording, slots: int, log: CallbackLog, terminal: Terminal,
                               checks: Checks) -> dict[str, Any]:
    """Fill the queue's slots with gated tasks, then cancel a task queued behind them, and a running one."""
    witness = f"futures-{uuid.uuid4().hex[:8]}"
    unbounded.section = "cancel"
    with holding_slots(unbounded.inner, slots) as gate:
        for blocker in gate.blockers:
            unbounded.timeline.add("gate (holds a slot)", blocker)
        queued = unbounded.submit(tasks.record, witness)
        log.attach(queued, 7)
        pending_cancelled = queued.cancel()
        running_cancelled = gate.blockers[0].cancel()
    ran_before_later_run = record_count(unbounded.inner.redis, witness)
    later = unbounded.submit(tasks.record, witness).result(timeout=TIMEOUT)
    terminal.line(f"{slots} gated task(s) hold every slot; cancel() of a queued task -> {pending_cancelled}, "
                  f"of a running one -> {running_cancelled}; the cancelled task ran {ran_before_later_run} "
                  f"time(s) (a later run of the same task counted {later})")
    checks.check("cancel() of a queued task is True", pending_cancelled)
    checks.check("cancel() of a running task is False", not running_cancelled)
    checks.check("the cancelled task never ran", ran_before_later_run == 0 and later == 1)
    return {"pending": pending_cancelled, "running": running_cancelled, "cancelled_task_runs": ran_before_later_run}


def show_exception(notes: Recording, terminal: Terminal, checks: Checks) -> None:
    terminal.line("\n[exception] f.exception() returns what the task raised")
    notes.section = "exception"
    future = notes.submit(tasks.fail_custom, "raised on purpose on the worker")
    error = future.exception(timeout=TIMEOUT)
    cause = str(getattr(error, "__cause__", "") or "").strip().strip('"').strip().splitlines()
    terminal.line(f"f.exception() -> {type(error).__name__}: {error}")
    terminal.line(f"its __cause__ is the worker's traceback, ending: {cause[-1] if cause else '(none)'}")
    terminal.record("exception", {"type": type(error).__name__, "message": str(error)})
    checks.check("exception() kept the task's exception type", isinstance(error, DemoError))
