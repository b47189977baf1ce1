"""``python -m producer lesson gevent``: cooperative switching, and what one greenlet that never yields costs the rest.

Part one is the textbook ``foo``/``bar``: two tasks on the gevent worker meet (a barrier in the worker's
memory, so they run side by side in one process), then record their lines, with ``gevent.sleep(0)``
between them and, for contrast, without. Part two runs a few *ticker* greenlets that sleep 10 ms at a
time and measure how late they wake, while a neighbour task in the same worker waits cooperatively,
blocks in an unpatched call, or computes: the others' latency, measured.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from celery_futures import CeleryExecutor, CeleryFuture
from producer.gates import new_gate_name, open_gate
from producer.lessons.common import (
    BARRIER_SECONDS,
    TIMEOUT,
    Checks,
    done_all,
    require_workers,
    spin_size,
    wait_running,
)
from producer.session import Session
from producer.terminal import Terminal
from worker import functions
from worker.tasks import demo as tasks
from worker.tasks import lessons as lesson_tasks

QUEUE = "gevent"
FOO = ("foo", ["Running in foo", "Explicit context switch to foo again"])
BAR = ("bar", ["Explicit context to bar", "Implicit context switch back to bar"])
TICK_SECONDS = 0.01

INTRO = f"""\
# gevent: greenlets take turns, and only when they yield

A gevent worker runs its tasks as greenlets in **one** OS thread. One greenlet runs at a time; another gets
the thread only when the running one *yields*: `gevent.sleep(0)`, or a blocking call that gevent has
patched (socket, `time.sleep`), which parks the greenlet and lets the hub run whoever is ready.

1. The textbook `foo` and `bar`, as two tasks on the gevent worker: with `gevent.sleep(0)` between their lines
   the lines interleave; without it, each task runs to its end before the other starts.
2. The price of a greenlet that does not yield: a few *ticker* tasks sleep {TICK_SECONDS * 1000:.0f} ms at a
   time and measure how late they wake up, while one neighbour in the same worker waits cooperatively, blocks
   in an unpatched call (the OS's own `sleep`, like a C library's socket), or computes. Every other greenlet
   waits for it.
"""


def run_gevent(session: Session) -> bool:
    terminal = session.terminal
    executor = session.executor(queue=QUEUE)
    slots = require_workers(session, executor, [QUEUE])
    if slots is None:
        return False
    if slots[QUEUE] < 2:
        terminal.error(f"the {QUEUE} queue has {slots[QUEUE]} slot; this lesson needs at least 2")
        return False
    terminal.explain(INTRO)
    checks = Checks(terminal)
    with_yield = show_trace(executor, terminal, switch=True)
    without_yield = show_trace(executor, terminal, switch=False)
    checks.check("foo and bar ran side by side in one process", with_yield.together and without_yield.together)
    checks.check("with gevent.sleep(0) the trace interleaves", with_yield.interleaved)
    checks.check("without a yield each task runs to its end first", not without_yield.interleaved)
    rows = show_neighbours(executor, terminal, slots[QUEUE] - 1, 0.2 if session.quick else 1.0)
    checks.check("every neighbour returned its result", all(row.result_ok for row in rows))
    return checks.finish("gevent")


@dataclass(frozen=True)
class Trace:
    steps: list[list[Any]]
    together: bool

    @property
    def interleaved(self) -> bool:
        """No task records two lines in a row: each line was followed by a switch to the other task."""
        labels = [label for _, label, _ in self.steps]
        return all(a != b for a, b in itertools.pairwise(labels))


def show_trace(executor: CeleryExecutor, terminal: Terminal, *, switch: bool) -> Trace:
    barrier = f"trace-{uuid.uuid4().hex[:12]}"
    futures = [executor.submit(lesson_tasks.yield_trace, barrier, 2, label, lines, switch=switch,
                               timeout=BARRIER_SECONDS) for label, lines in (FOO, BAR)]
    done_all(futures)
    reports = [f.result() for f in futures]
    steps = sorted((step for report in reports for step in report["steps"]), key=lambda step: step[0])
    together = all(r["met"] for r in reports) and len({r["pid"] for r in reports}) == 1
    how = "with gevent.sleep(0) between lines" if switch else "without any yield between lines"
    key = "trace_with_yield" if switch else "trace_without_yield"
    terminal.table(key, f"foo and bar, {how}", ["#", "task", "line"],
                   [[index, label, line] for index, (_, label, line) in enumerate(steps, 1)])
    trace = Trace(steps, together)
    where = f"pid {reports[0]['pid']}" if together else "different processes: no shared thread to take turns in"
    verdict = "interleave" if trace.interleaved else "do not interleave"
    terminal.line(f"main: joinall done ({where}); the lines {verdict}")
    return trace


@dataclass(frozen=True)
class NeighbourRow:
    neighbour: str
    seconds: float
    tickers: int
    ticks: int
    worst_ms: float
    median_ms: float
    same_process: bool
    result_ok: bool

    def row(self) -> list[Any]:
        return [self.neighbour, round(self.seconds, 3), self.tickers, self.ticks, self.worst_ms, self.median_ms,
                "yes" if self.same_process else "no"]


def show_neighbours(executor: CeleryExecutor, terminal: Terminal, tickers: int, seconds: float) -> list[NeighbourRow]:
    size = spin_size(seconds)
    cases = [
        Neighbour("waits cooperatively: time.sleep (patched)", tasks.io_sleep, seconds, seconds),
        Neighbour("blocks unpatched: the OS's own sleep", tasks.block_unpatched, seconds, seconds),
        Neighbour("computes: a pure-Python loop", tasks.cpu_bound, size, functions.spin(size)),
    ]
    count = min(tickers, 10)
    with terminal.progress("neighbours", len(cases)) as advance:
        rows = []
        for case in cases:
            rows.append(measure_neighbour(executor, count, case))
            advance()
    terminal.table("neighbours", f"{count} ticker greenlets sleep {TICK_SECONDS * 1000:.0f} ms at a time beside "
                   "one neighbour: how late they woke", ["neighbour", "it ran (s)", "tickers", "ticks",
                                                         "worst delay (ms)", "median delay (ms)", "same process"],
                   [row.row() for row in rows])
    blocked = max(rows[1:], key=lambda row: row.worst_ms)
    terminal.line(f"A neighbour that never yields stopped every other greenlet: their worst delay went from "
                  f"{rows[0].worst_ms:.0f} ms to {blocked.worst_ms:.0f} ms, about as long as it ran "
                  f"({blocked.seconds * 1000:.0f} ms).")
    return rows


@dataclass(frozen=True)
class Neighbour:
    label: str
    task: Any
    argument: Any
    expected: Any


def measure_neighbour(executor: CeleryExecutor, count: int, case: Neighbour) -> NeighbourRow:
    """Tickers first (all running), then the neighbour; the tickers stop once it has finished."""
    stop = new_gate_name()
    with stopping_tickers(executor, stop, count):
        tickers = [executor.submit(lesson_tasks.ticker, stop, TICK_SECONDS, TIMEOUT) for _ in range(count)]
        wait_running(tickers)
        neighbour = executor.submit(case.task, case.argument)
        result = neighbour.result(timeout=TIMEOUT)
    done_all(tickers)
    reports = [t.result() for t in tickers]
    delays = [delay for r in reports for delay in r["delays_ms"]] or [0.0]
    pids = {r["pid"] for r in reports} | {process_of(neighbour)}
    return NeighbourRow(case.label, (neighbour.finished_at or 0.0) - (neighbour.started_at or 0.0), count,
                        len(delays), max(delays), round(statistics.median(delays), 2), len(pids) == 1,
                        result == case.expected)


def process_of(future: CeleryFuture) -> Any:
    return (future.execution or {}).get("pid")


@contextlib.contextmanager
def stopping_tickers(executor: CeleryExecutor, stop: str, count: int) -> Iterator[None]:
    """Tell the tickers to stop when the block ends, even on Ctrl-C, so none is left running."""
    try:
        yield
    finally:
        open_gate(executor.redis, stop, count)

