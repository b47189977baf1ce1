"""What every lesson needs: the workers it relies on, gates that hold slots, checks, a timeline of tasks.

Lessons are plain functions ``(session) -> bool`` built on the public Executor API. Their *checks* are the
deterministic facts a lesson promises (results in input order, no update lost under a lock, a cancelled
task never ran); a failed check makes the lesson return False (exit status 1). Timings are shown, never
checked: they are what the lesson measures, not what it promises.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any

from celery_futures import CeleryExecutor, CeleryFuture
from producer.cluster import WorkerInfo, capacity, queue_of, workers
from producer.gates import new_gate_name, open_gate
from producer.session import Session
from producer.terminal import Advance, Terminal
from worker import functions
from worker.constants import POOL_QUEUES
from worker.tasks import demo as tasks

TIMEOUT = 120.0
"""The longest any lesson waits for one thing; a safety net, never a pacing device."""
BARRIER_SECONDS = 5.0
"""How long tasks that should run side by side wait for each other in a worker: short, so that after a
Ctrl-C (which cancels the others) none of them holds a slot for long."""
INSPECT_SECONDS = 1.0
"""How long to wait for workers to answer Celery's inspect broadcast."""
BAR_WIDTH = 16


@dataclass(frozen=True)
class QueueSet:
    """One executor per queue a lesson sends to, and each queue's task slots across the cluster."""

    executors: dict[str, CeleryExecutor]
    slots: dict[str, int]


def open_queues(session: Session, queues: Sequence[str]) -> QueueSet | None:
    """Executors for ``queues`` once a worker answers on each, or None after saying which one has none."""
    executors = {queue: session.executor(queue=queue) for queue in queues}
    slots = require_workers(session, executors[queues[0]], queues)
    return None if slots is None else QueueSet(executors, slots)


def pick_queue(session: Session, preferred: str) -> str:
    """The session's ``--queue`` if given; else ``preferred`` when a worker consumes it; else the default queue,
    which is what a plain ``docker compose up`` (or ``python -m worker``) serves."""
    if session.queue:
        return session.queue
    probe = session.executor()
    if any(preferred in w.queues for w in workers(probe, timeout=INSPECT_SECONDS)):
        return preferred
    fallback = queue_of(probe)
    session.terminal.status(f"no worker consumes queue {preferred!r}; using the default queue {fallback!r}")
    return fallback


def require_workers(session: Session, executor: CeleryExecutor, queues: Sequence[str]) -> dict[str, int] | None:
    """Each queue's task slots across the cluster, or None after saying which queue has no worker.

    Shows the workers found on those queues, and warns when a queue named after a pool is served by
    another pool (the lesson's claims about that pool would not hold).
    """
    terminal = session.terminal
    found = [w for w in workers(executor, timeout=INSPECT_SECONDS) if set(w.queues) & set(queues)]
    slots = {queue: capacity(found, queue) for queue in queues}
    missing = [queue for queue, count in slots.items() if count == 0]
    if missing:
        terminal.error(f"no worker answers on queue(s) {', '.join(missing)}; this lesson needs one worker "
                       f"consuming each of: {', '.join(queues)} (e.g. `docker compose --profile pools up -d "
                       f"--wait`, or `python -m worker --pool <pool> --queues <pool>`)")
        return None
    terminal.table("workers", "Workers used", ["worker", "pool", "concurrency", "queues"],
                   [[w.name, w.pool, w.concurrency, ",".join(w.queues)] for w in found])
    warn_mismatched_pools(terminal, found, queues)
    return slots


def warn_mismatched_pools(terminal: Terminal, found: list[WorkerInfo], queues: Sequence[str]) -> None:
    for info in found:
        for queue in set(info.queues) & set(queues):
            if queue in POOL_QUEUES and info.pool != queue:
                terminal.status(f"warning: queue {queue!r} is served by {info.name} on the {info.pool} pool")


class Checks:
    """The deterministic facts a lesson promises, recorded for ``--json`` and summed up as its verdict."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.results: dict[str, bool] = {}

    def check(self, name: str, ok: bool) -> bool:
        self.results[name] = bool(ok)
        if not ok:
            self.terminal.status(f"check failed: {name}")
        return bool(ok)

    def finish(self, lesson: str) -> bool:
        """Record every check; True if all held."""
        ok = all(self.results.values())
        self.terminal.record("lesson", lesson)
        self.terminal.record("checks", self.results)
        self.terminal.record("ok", ok)
        failed = [name for name, held in self.results.items() if not held]
        self.terminal.line(f"{lesson}: all {len(self.results)} checks held" if ok
                           else f"{lesson}: FAILED checks: {', '.join(failed)}")
        return ok


def wait_running(futures: Iterable[CeleryFuture], timeout: float = TIMEOUT) -> None:
    """Block until every future is running (a worker published STARTED); watches local state only."""
    pending = list(futures)
    deadline = time.monotonic() + timeout
    while not all(f.running() or f.done() for f in pending):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(not f.running() for f in pending)} task(s) did not start in {timeout:.0f}s")
        time.sleep(0.005)


def done_all(futures: Sequence[CeleryFuture], timeout: float = TIMEOUT) -> None:
    """Wait for every future, or raise TimeoutError naming how many are still out."""
    _, not_done = wait(futures, timeout=timeout)
    if not_done:
        raise TimeoutError(f"{len(not_done)} task(s) did not finish in {timeout:.0f}s")


def advance_on_done(futures: Iterable[CeleryFuture], advance: Advance) -> None:
    for future in futures:
        future.add_done_callback(lambda _f: advance())


class Gate:
    """Tasks that hold a queue's slots until the lesson opens the gate: "pending" without timing."""

    def __init__(self, executor: CeleryExecutor, slots: int) -> None:
        self.executor = executor
        self.slots = slots
        self.name = new_gate_name()
        self.blockers: list[CeleryFuture] = []
        self.opened = False

    def fill(self) -> list[CeleryFuture]:
        """Submit one gate task per slot and return once all of them run: the queue is full."""
        self.blockers = [self.executor.submit(tasks.gate, self.name, TIMEOUT) for _ in range(self.slots)]
        wait_running(self.blockers)
        return self.blockers

    def open(self, *, wait_for_blockers: bool = True) -> None:
        """Release every gate task (once), and by default wait until their slots are free again."""
        if not self.opened:
            self.opened = True
            open_gate(self.executor.redis, self.name, self.slots)
        if wait_for_blockers:
            done_all(self.blockers)


@contextlib.contextmanager
def holding_slots(executor: CeleryExecutor, slots: int) -> Iterator[Gate]:
    """Fill ``slots`` with gate tasks for the ``with`` block; the gate is open again after it, whatever happens.

    On Ctrl-C (or any error) every task of ``executor`` that has not started is cancelled *before* the gate
    opens, so nothing queued behind the gate gets the freed slots: the run leaves nothing behind.
    """
    gate = Gate(executor, slots)
    try:
        gate.fill()
        yield gate
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        gate.open(wait_for_blockers=False)
        raise
    gate.open()


@dataclass
class Timeline:
    """Every task of a lesson: which worker, pool, process and thread or greenlet ran it, and when."""

    t0: float = field(default_factory=time.monotonic)
    entries: list[tuple[str, CeleryFuture]] = field(default_factory=list)

    def add(self, label: str, future: CeleryFuture) -> CeleryFuture:
        self.entries.append((label, future))
        return future

    def show(self, terminal: Terminal, title: str = "Timeline (seconds from the lesson's start)") -> None:
        """One row per task; ``--json`` gets every field in its own column, people get a table for 80 columns."""
        end = max([f.finished_at or f.submitted_at for _, f in self.entries], default=self.t0)
        if terminal.json_output:
            rows = [[label, *where(future), *self.times(future), outcome(future)] for label, future in self.entries]
            terminal.table("timeline", title, ["task", "worker", "pool", "pid", "thread / greenlet", "queued",
                                               "started", "finished", "outcome"], rows)
            return
        rows = [[label, "\n".join(map(str, compact_where(future))), self.compact_times(future),
                 self.bar(future, end)] for label, future in self.entries]
        terminal.table("timeline", title, ["task", "ran on", "queued\nstarted\nended", "· queued\n█ running"], rows)

    def compact_times(self, future: CeleryFuture) -> str:
        return "\n".join(map(str, self.times(future)))

    def times(self, future: CeleryFuture) -> list[float | str]:
        return [self.offset(future.submitted_at), self.offset(future.started_at), self.offset(future.finished_at)]

    def offset(self, moment: float | None) -> float | str:
        return "-" if moment is None else round(moment - self.t0, 3)

    def bar(self, future: CeleryFuture, end: float) -> str:
        """``·`` while queued, ``█`` while running, ``x`` where a cancel ended it, on a shared scale."""
        span = max(end - self.t0, 1e-9)

        def col(moment: float) -> int:
            return min(BAR_WIDTH - 1, math.floor((moment - self.t0) / span * BAR_WIDTH))

        cells = [" "] * BAR_WIDTH
        start = future.started_at
        stop = future.finished_at or (start if start is not None else future.submitted_at)
        for index in range(col(future.submitted_at), col(start if start is not None else stop) + 1):
            cells[index] = "·"
        if start is not None:
            for index in range(col(start), col(stop) + 1):
                cells[index] = "█"
        if future.cancelled():
            cells[col(stop)] = "x"
        return "".join(cells)


def where(future: CeleryFuture) -> list[Any]:
    """Worker, pool, pid and thread (or greenlet) from the task's STARTED meta; dashes if it never started."""
    run: dict[str, Any] = future.execution or {}
    greenlet = run.get("greenlet")
    unit = f"greenlet {greenlet:x}" if isinstance(greenlet, int) else run.get("thread", "-")
    return [run.get("hostname", "-"), run.get("pool", "-"), run.get("pid", "-"), unit]


def compact_where(future: CeleryFuture) -> list[str]:
    """Worker; pool and pid; thread or greenlet: three short lines for a narrow table cell."""
    worker, pool, pid, unit = where(future)
    return [str(worker), f"{pool} pid {pid}", str(unit)] if pool != "-" else ["never ran"]


def outcome(future: CeleryFuture) -> str:
    if future.cancelled():
        return "cancelled"
    if not future.done():
        return "running" if future.running() else "pending"
    error = future.exception()
    return f"{type(error).__name__}" if error is not None else f"returned {future.result()!r}"


def spin_size(seconds: float) -> int:
    """How many ``spin`` steps take about ``seconds`` here (workers on this machine run the same loop)."""
    probe = 200_000
    best = min(timed(lambda: functions.spin(probe)) for _ in range(3))
    return max(10_000, int(probe * seconds / best))


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
