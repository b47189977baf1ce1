"""Every pool on every workload, our executor next to raw Celery, as makespan over the ideal.

Makespan: from the first send to the last result, as the caller sees it. Ideal: what the hardware and the
pool size allow if Celery cost nothing, with ``t`` the time one task takes on its own:

* CPU (``cpu_bound(n)``, ``n`` calibrated here so one call takes about 20 ms):
  ``N * t / min(N, concurrency, cores)``. No pool runs more Python at once than there are cores, and on
  threads, gevent and solo only one task holds the GIL at a time: their ratio shows what the GIL costs.
* IO (``io_sleep(0.05)``, a blocking sleep; ``io_redis_wait(0.05)``, a real socket waiting in Redis
  ``BLPOP``): ``N * t / min(N, concurrency)``. Waiting needs no core; only the pool size limits the overlap.

``t`` is what one task's body takes on its own, measured here by running that body (median of 7): the
spin, the sleep, the BLPOP. Measured, not assumed: Redis checks blocking timeouts on its event-loop ticks
(``hz`` 10 by default), so a 50 ms BLPOP timeout returns after about 100 ms.

The workers run on the same machine as this process, so ``cores`` is this machine's.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import Task

from producer.bench.rig import Rig, collect, deadline_for, rotated, settle
from producer.terminal import Advance
from worker import constants as c
from worker import functions
from worker.tasks import demo as tasks

OURS, RAW = "CeleryExecutor", "raw Celery"
VARIANTS = (OURS, RAW)
CALIBRATION_SIZE = 100_000
CALIBRATION_REPEATS = 7


@dataclass(frozen=True)
class Workload:
    name: str
    task: str
    args: tuple[Any, ...]
    tasks: int
    task_seconds: float
    """``t``: how long the task's body takes on its own, measured in this process (see ``workloads``)."""
    uses_cpu: bool

    def ideal(self, concurrency: int, cores: int) -> float:
        lanes = min(self.tasks, concurrency, cores) if self.uses_cpu else min(self.tasks, concurrency)
        return self.tasks * self.task_seconds / lanes


@dataclass(frozen=True)
class PoolRun:
    pool: str
    concurrency: int
    workload: str
    variant: str
    tasks: int
    makespan: float
    ideal: float

    @property
    def ratio(self) -> float:
        return self.makespan / self.ideal


def alone_seconds(call: Callable[[], object]) -> float:
    """Median seconds of ``call()`` in this process: a task's body on its own, without Celery."""
    samples = []
    for _ in range(CALIBRATION_REPEATS):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def spin_size(seconds: float) -> int:
    """The ``n`` for which ``functions.spin(n)`` (what ``cpu_bound`` runs) takes about ``seconds`` here."""
    return round(CALIBRATION_SIZE * seconds / alone_seconds(partial(functions.spin, CALIBRATION_SIZE)))


def workloads(rig: Rig) -> list[Workload]:
    """The three workloads, each with ``t`` measured here by running what its task runs."""
    sizes, io = rig.sizes, rig.sizes.io_task_seconds
    spin_n = spin_size(sizes.cpu_task_seconds)
    never = f"{c.GATE_PREFIX}__bench_never__"  # what io_redis_wait does: BLPOP a list nobody fills
    return [
        Workload("cpu", tasks.cpu_bound.name, (spin_n,), sizes.cpu_tasks,
                 alone_seconds(partial(functions.spin, spin_n)), uses_cpu=True),
        Workload("io_sleep", tasks.io_sleep.name, (io,), sizes.io_tasks,
                 alone_seconds(partial(time.sleep, io)), uses_cpu=False),
        Workload("io_socket", tasks.io_redis_wait.name, (io,), sizes.io_tasks,
                 alone_seconds(partial(rig.redis.blpop, [never], timeout=io)), uses_cpu=False),
    ]


def run_ours(rig: Rig, queue: str, load: Workload) -> float:
    executor = rig.ours(queue)
    started = time.perf_counter()
    futures = [executor.submit(load.task, *load.args) for _ in range(load.tasks)]
    settle(futures, deadline_for(load.tasks * load.task_seconds))
    return time.perf_counter() - started


def run_raw(rig: Rig, queue: str, load: Workload) -> float:
    task: Task[Any, Any] = rig.raw_app.tasks[load.task]
    started = time.perf_counter()
    results = [task.apply_async(load.args, queue=queue) for _ in range(load.tasks)]
    collect(results, deadline_for(load.tasks * load.task_seconds))
    return time.perf_counter() - started


RUNNERS: dict[str, Callable[[Rig, str, Workload], float]] = {OURS: run_ours, RAW: run_raw}


def warm_up(rig: Rig, pool: str) -> bool:
    """One no-op per client on the pool's queue: connections and declarations are not part of a makespan."""
    rig.ours(pool).submit(tasks.noop).result(timeout=deadline_for(1))
    rig.raw(tasks.noop).apply_async(queue=pool).get(timeout=deadline_for(1))
    return True


def measure_cell(rig: Rig, pool: str, load: Workload, first: int) -> list[PoolRun]:
    """Both clients on one pool and workload, ``first`` choosing who goes first."""
    worker = rig.pools[pool]
    ideal = load.ideal(worker.concurrency, os.cpu_count() or 1)
    runs = []
    for variant in rotated(VARIANTS, first):
        makespan = rig.attempt(f"pool {pool} {load.name} {variant}", partial(RUNNERS[variant], rig, pool, load))
        if makespan is not None:
            runs.append(PoolRun(pool, worker.concurrency, load.name, variant, load.tasks, makespan, ideal))
    return runs


def measure_pools(rig: Rig, loads: list[Workload], advance: Advance) -> list[PoolRun]:
    """Every pool that has its worker, times every workload; one progress step per (pool, workload) cell."""
    runs: list[PoolRun] = []
    for pool_index, pool in enumerate(list(rig.pools)):
        if rig.attempt(f"pool {pool} warm-up", partial(warm_up, rig, pool)) is None:
            advance(len(loads))
            continue
        for load_index, load in enumerate(loads):
            if pool in rig.pools and rig.answers(pool):
                runs += measure_cell(rig, pool, load, pool_index + load_index)
            advance()
    return runs
