"""``python -m producer lesson cancel``: per pool, cancelling queued tasks (exact) and interrupting running ones.

Queued: gate tasks hold every slot of the pool's queue, a few tasks wait behind them, ``cancel()`` is
called on each, the gates open, and a later run of the same task counts how often the cancelled ones ran
(never: the start/cancel claim in Redis decides). Running: a task that checks its interrupt flag, one that
only sleeps, and one that only computes are started and ``interrupt()``-ed; whether the body reached its
end is read from a side effect it leaves only there, whatever the future reports.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery_futures import CeleryExecutor, CeleryFuture, TaskInterruptedError
from celery_futures.protocol.pools import POOLS, Interrupt
from producer.gates import record_count
from producer.lessons.common import (
    TIMEOUT,
    Checks,
    done_all,
    holding_slots,
    open_queues,
    wait_running,
)
from producer.session import Session
from producer.terminal import Advance
from worker.constants import POOL_QUEUES
from worker.tasks import demo as tasks
from worker.tasks import lessons as lesson_tasks

INTRO = """\
# Cancel and interrupt, per pool

**Cancelling a queued task** is exact on every pool: before a worker runs a task it claims it in Redis
(`SET NX`), and `cancel()` claims it first or fails. True means the task will never run, anywhere; False
means a worker already started it.

**Stopping a running task** is what `future.interrupt()` is for, and each pool allows something different:

* **prefork** signals the child process (SIGTERM): any code stops at once.
* **gevent** kills the greenlet: it stops at its next yield, so a patched sleep stops at once and a loop
  that never yields runs to its end first. The kill then lands at the next switch, which may be while the
  result is being stored: either the result arrives, or it is lost and the future says interrupted.
* **threads** and **solo** cannot stop a thread from outside: only a task that checks its interrupt flag
  (`checkpoint()`) stops; anything else runs to its end.

Three running tasks per pool: one checks its flag, one only sleeps, one only computes. "Body finished" is
read from a side effect each leaves at its very end, not from the future.
"""


@dataclass(frozen=True)
class CancelRow:
    pool: str
    slots: int
    queued: int
    cancelled: int
    median_ms: float
    ran: int
    left_queued: int

    def row(self) -> list[Any]:
        return [self.pool, self.slots, self.queued, self.cancelled, self.median_ms, self.ran, self.left_queued]


@dataclass(frozen=True)
class InterruptRow:
    pool: str
    kind: str
    method: Interrupt | None
    outcome: str
    body_finished: bool
    stopped_after: float
    nominal: float

    def row(self) -> list[Any]:
        return [self.pool, self.kind, self.method.value if self.method else "None", self.outcome,
                "yes" if self.body_finished else "no", round(self.stopped_after, 3), self.nominal]


def run_cancel(session: Session) -> bool:
    terminal = session.terminal
    opened = open_queues(session, POOL_QUEUES)
    if opened is None:
        return False
    executors, slots = opened.executors, opened.slots
    terminal.explain(INTRO)
    checks = Checks(terminal)
    queued, seconds = (3, 1.0) if session.quick else (10, 3.0)
    cancels, interrupts = [], []
    for pool in POOL_QUEUES:
        with terminal.progress(f"cancel and interrupt on {pool}", queued + len(lesson_tasks.WORK_KINDS)) as advance:
            cancels.append(cancel_queued(executors[pool], pool, slots[pool], queued, advance))
            interrupts += [interrupt_running(executors[pool], pool, kind, seconds, advance)
                           for kind in lesson_tasks.WORK_KINDS]
    terminal.table("cancel", "cancel() of tasks queued behind gated slots",
                   ["pool", "slots held", "queued", "cancel() True", "cancel() median (ms)", "times they ran",
                    "left in the queue"], [row.row() for row in cancels])
    terminal.table("interrupt", "interrupt() of running tasks",
                   ["pool", "task", "interrupt()", "future", "body finished", "stopped after (s)", "runs (s)"],
                   [row.row() for row in interrupts])
    check_cancels(checks, cancels)
    check_interrupts(checks, interrupts)
    return checks.finish("cancel")


def cancel_queued(executor: CeleryExecutor, pool: str, slots: int, count: int, advance: Advance) -> CancelRow:
    """Gate tasks hold every slot, so ``count`` record tasks really wait in Redis while each is cancelled."""
    witness = f"cancel-{pool}-{uuid.uuid4().hex[:8]}"
    timings, results = [], []
    with holding_slots(executor, slots):
        futures = [executor.submit(tasks.record, witness) for _ in range(count)]
        for future in futures:
            started = time.perf_counter()
            results.append(future.cancel())
            timings.append((time.perf_counter() - started) * 1000)
            advance()
    later = executor.submit(tasks.record, witness).result(timeout=TIMEOUT)
    left = int(executor.redis.llen(pool))
    # The later run's INCR returns every run so far, its own included: the cancelled tasks ran later - 1 times.
    return CancelRow(pool, slots, count, sum(results), round(statistics.median(timings), 2), later - 1, left)


def interrupt_running(executor: CeleryExecutor, pool: str, kind: str, seconds: float,
                      advance: Advance) -> InterruptRow:
    """Start one ``work`` task, interrupt it once it runs, and read from its side effect whether its body ended."""
    mark = f"interrupt-{pool}-{uuid.uuid4().hex[:8]}"
    future = executor.submit(lesson_tasks.work, kind, seconds, mark)
    wait_running([future])
    asked = time.monotonic()
    method = future.interrupt()
    done_all([future], timeout=seconds + TIMEOUT)
    advance()
    return InterruptRow(pool, kind, method, future_says(future), record_count(executor.redis, mark) > 0,
                        (future.finished_at or asked) - asked, seconds)


def future_says(future: CeleryFuture) -> str:
    """``interrupted`` (TaskInterruptedError), another exception's type, or what the task returned."""
    error = future.exception()
    if isinstance(error, TaskInterruptedError):
        return "interrupted"
    return type(error).__name__ if error is not None else f"returned {future.result()}"


def check_cancels(checks: Checks, rows: list[CancelRow]) -> None:
    for row in rows:
        checks.check(f"{row.pool}: cancel() of every queued task was True", row.cancelled == row.queued)
        checks.check(f"{row.pool}: the cancelled tasks never ran", row.ran == 0)


EXPECTED_STOPS = {
    Interrupt.SIGNAL: {"checks-flag": True, "sleeps": True, "computes": True},
    Interrupt.KILL_GREENLET: {"checks-flag": True, "sleeps": True, "computes": False},
    Interrupt.COOPERATIVE: {"checks-flag": True, "sleeps": False, "computes": False},
}
"""What each way of interrupting can stop, by the pool's own description (``worker/pools.py``)."""


def check_interrupts(checks: Checks, rows: list[InterruptRow]) -> None:
    for row in rows:
        spec = POOLS[row.pool]
        checks.check(f"{row.pool}: interrupt() said {spec.interrupt.value}", row.method is spec.interrupt)
        should_stop = EXPECTED_STOPS[spec.interrupt][row.kind]
        checks.check(f"{row.pool}: the task that {row.kind} {'stopped' if should_stop else 'ran to its end'}",
                     row.body_finished is not should_stop)
