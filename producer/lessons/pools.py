"""``python -m producer lesson pools``: the same CPU-bound and IO-bound work on prefork, threads, gevent and solo.

For each pool and workload: one task alone (its duration, *t*), then the whole batch (its makespan). The
ideal is what perfect use of the pool's slots would give, ``ceil(tasks / slots) * t``; the speed-up is how
much faster the batch ran than one task at a time would have (``tasks * t / makespan``). A table shows both,
and two PNG plots, written to ``$LESSON_RESULTS_DIR`` (default ``./lesson-results``), draw them. Every
number comes from this run.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery_futures import CeleryExecutor
from producer.lessons.common import (
    TIMEOUT,
    Checks,
    advance_on_done,
    done_all,
    open_queues,
    spin_size,
)
from producer.session import Session
from producer.terminal import Terminal, save_bar_chart
from worker import functions
from worker.constants import POOL_QUEUES
from worker.tasks import demo as tasks

RESULTS_DIR_ENV = "LESSON_RESULTS_DIR"
"""Where the plot goes; ``lesson-results`` (in the working directory) when unset."""
DEFAULT_RESULTS_DIR = "lesson-results"
WARM_UP_TASKS = 8
ALONE_RUNS = 3
CPU_WORKLOAD = "CPU"
IO_WORKLOAD = "IO"

INTRO = """\
# Pools: processes, threads, greenlets, one at a time

The same two workloads go to a worker of each pool: **CPU-bound** tasks (a pure-Python loop) and
**IO-bound** tasks (a blocking sleep, standing for a network wait).

* **prefork** runs each task in its own process: CPU work runs on several cores at once.
* **threads** share one process, and CPython's GIL lets one thread run Python at a time: CPU work does
  not speed up, but waits overlap, because a thread releases the GIL while it waits.
* **gevent** runs greenlets in one thread; patched blocking calls switch to another greenlet. A greenlet
  costs far less than a thread, so a worker can hold hundreds of waits: it wins on waiting, and cannot
  speed up CPU work at all.
* **solo** runs one task at a time in the worker's own process: the baseline.

*Ideal* is what perfect use of the pool's slots would give: `ceil(tasks / slots) x t`, with `t` one task's
time alone on that pool. *Speed-up* is `tasks x t / makespan`: how much faster than one at a time.
"""


@dataclass(frozen=True)
class Workload:
    name: str
    task: Any
    argument: int | float
    count: int
    expected: Any

    def label(self) -> str:
        return f"{self.count} x {self.task.name.rsplit('.', 1)[-1]}({self.argument!r})"


@dataclass(frozen=True)
class Measured:
    pool: str
    workload: str
    tasks: int
    slots: int
    single: float
    makespan: float
    results_ok: bool

    @property
    def ideal(self) -> float:
        return math.ceil(self.tasks / self.slots) * self.single

    @property
    def vs_ideal(self) -> float:
        return self.makespan / self.ideal

    @property
    def speedup(self) -> float:
        return self.tasks * self.single / self.makespan

    def row(self) -> list[Any]:
        return [self.pool, self.workload, self.tasks, self.slots, round(self.single, 3), round(self.makespan, 3),
                round(self.ideal, 3), round(self.vs_ideal, 2), round(self.speedup, 2)]


COLUMNS = ["pool", "work", "tasks", "slots", "t (s)", "makespan (s)", "ideal (s)", "vs ideal", "speed-up"]


def workloads(quick: bool) -> list[Workload]:
    cpu_seconds, cpu_count, io_count = (0.1, 4, 20) if quick else (0.3, 12, 100)
    size = spin_size(cpu_seconds)
    return [Workload(CPU_WORKLOAD, tasks.cpu_bound, size, cpu_count, functions.spin(size)),
            Workload(IO_WORKLOAD, tasks.io_sleep, 0.1, io_count, 0.1)]


def run_pools(session: Session) -> bool:
    terminal = session.terminal
    opened = open_queues(session, POOL_QUEUES)
    if opened is None:
        return False
    executors, slots = opened.executors, opened.slots
    terminal.explain(INTRO)
    checks = Checks(terminal)
    plan = workloads(session.quick)
    terminal.status(f"workloads: {'; '.join(w.name + '-bound: ' + w.label() for w in plan)}")
    measured = [measure(executors[pool], pool, slots[pool], workload, terminal)
                for workload in plan for pool in POOL_QUEUES]
    terminal.table("pools", "Makespan against the ideal (t: one task alone; vs ideal: makespan / ideal)", COLUMNS,
                   [m.row() for m in measured])
    summarize(measured, terminal)
    plots = save_plots(measured)
    terminal.line(f"plots: {', '.join(map(str, plots))}")
    terminal.record("plots", [str(path) for path in plots])
    for m in measured:
        checks.check(f"{m.workload} on {m.pool}: every result correct", m.results_ok)
    return checks.finish("pools")


def measure(executor: CeleryExecutor, pool: str, slots: int, workload: Workload, terminal: Terminal) -> Measured:
    """One task alone (median of a few runs, after a warm-up), then the batch; times are the producer's clock.

    The warm-up runs a few no-ops so that every prefork child has run a task before anything is timed.
    """
    done_all([executor.submit(tasks.noop) for _ in range(min(slots, WARM_UP_TASKS))])
    single, ok = time_alone(executor, workload)
    with terminal.progress(f"{workload.name}-bound on {pool}", workload.count) as advance:
        futures = [executor.submit(workload.task, workload.argument) for _ in range(workload.count)]
        advance_on_done(futures, advance)
        done_all(futures)
    makespan = max(f.finished_at or 0.0 for f in futures) - min(f.submitted_at for f in futures)
    ok = ok and all(f.result() == workload.expected for f in futures)
    return Measured(pool, workload.name, workload.count, slots, single, makespan, ok)


def time_alone(executor: CeleryExecutor, workload: Workload) -> tuple[float, bool]:
    """The median of a few runs of one task with the pool otherwise idle (one run alone is noisy)."""
    durations, ok = [], True
    for _ in range(ALONE_RUNS):
        future = executor.submit(workload.task, workload.argument)
        ok = future.result(timeout=TIMEOUT) == workload.expected and ok
        durations.append((future.finished_at or 0.0) - (future.started_at or future.submitted_at))
    return statistics.median(durations), ok


def summarize(measured: list[Measured], terminal: Terminal) -> None:
    """The two sentences the table proves, with this run's numbers in them."""
    speed = {(m.workload, m.pool): m.speedup for m in measured}
    size = {(m.workload, m.pool): m.slots for m in measured}
    cpu = ", ".join(f"{pool} {speed[CPU_WORKLOAD, pool]:.1f}x" for pool in POOL_QUEUES)
    io = ", ".join(f"{pool} {speed[IO_WORKLOAD, pool]:.1f}x ({plural(size[IO_WORKLOAD, pool], 'slot')})"
                   for pool in POOL_QUEUES)
    terminal.line(f"CPU-bound speed-up over one at a time: {cpu}. Only processes add cores; threads and "
                  f"greenlets take turns holding the GIL, so their CPU work runs one task at a time.")
    best = max(POOL_QUEUES, key=lambda pool: speed[IO_WORKLOAD, pool])
    terminal.line(f"IO-bound speed-up: {io}. Waiting needs a slot, not a core, so waits overlap as far as the "
                  f"pool has slots; a greenlet is the cheapest slot. Most waits at once here: {best}.")
    terminal.record("speedup", {f"{workload}/{pool}": round(value, 3) for (workload, pool), value in speed.items()})


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def save_plots(measured: list[Measured]) -> list[Path]:
    """Two PNGs: makespan against the ideal (the table's point), and speed-up (why gevent wins on waiting)."""
    folder = Path(os.environ.get(RESULTS_DIR_ENV) or DEFAULT_RESULTS_DIR)
    stem = f"pools-{time.strftime('%Y%m%d-%H%M%S')}"

    def series(value: Callable[[Measured], float]) -> dict[str, Sequence[float]]:
        return {f"{workload}-bound": [value(m) for pool in POOL_QUEUES for m in measured
                           if m.pool == pool and m.workload == workload]
                for workload in (CPU_WORKLOAD, IO_WORKLOAD)}

    return [
        save_bar_chart(folder / f"{stem}-vs-ideal.png", reference=1.0, groups=list(POOL_QUEUES),
                       title="Makespan / ideal per pool (1 = every slot busy all the time)",
                       ylabel="makespan / ideal (lower is better)", series=series(lambda m: m.vs_ideal)),
        save_bar_chart(folder / f"{stem}-speedup.png", groups=list(POOL_QUEUES),
                       title="Speed-up over running the tasks one at a time",
                       ylabel="speed-up (higher is better)", series=series(lambda m: m.speedup)),
    ]
