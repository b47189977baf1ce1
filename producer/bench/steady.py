"""Producer memory in steady state: the same batch again and again, through one executor and through a fresh
executor each time, and whether the producer ends every round where it ended the first.

Each round maps ``abs`` over ``n`` items (the plain-function runner) on the clients' queue and drops every
future. After it: ``gc.collect()``, then this process's traced memory (``tracemalloc``, started after a
warm-up, so it counts only what the rounds allocated and still hold), its resident set (``/proc/self/statm``),
and the resident set again after glibc's ``malloc_trim(0)`` hands freed memory back to the system: what the
resident set keeps beyond that is the allocator's arenas, not objects anyone holds. Flat means the last
round's traced memory is within :data:`FLAT_BYTES` of the first round's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from celery_futures import CeleryExecutor
from producer.bench.rig import CLIENTS_QUEUE, Rig, deadline_for
from producer.terminal import Advance

ONE, FRESH = "one executor", "a fresh executor each round"
MODES = (ONE, FRESH)
FLAT_BYTES = 256 * 1024
"""The most a round may end above the first one (traced memory) for the producer to count as flat."""
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class SteadyRound:
    mode: str
    round: int
    tasks: int
    seconds: float
    traced_bytes: int
    """What the rounds allocated and still hold, after ``gc.collect()``."""
    rss_bytes: int
    rss_trimmed_bytes: int
    """The resident set once ``malloc_trim(0)`` gave back what the allocator kept of freed memory."""


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def trim() -> None:
    """glibc's ``malloc_trim(0)``: return free heap memory to the system (elsewhere, nothing happens)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def settled(mode: str, index: int, tasks: int, seconds: float) -> SteadyRound:
    gc.collect()
    traced, rss = tracemalloc.get_traced_memory()[0], resident_bytes()
    trim()
    return SteadyRound(mode, index, tasks, seconds, traced, rss, resident_bytes())


def one_round(executor: CeleryExecutor, n: int) -> float:
    started = time.perf_counter()
    results = list(executor.map(abs, range(-n, 0), timeout=deadline_for(n * 0.01)))
    if results != list(range(n, 0, -1)):
        raise AssertionError("a round's map returned something else than abs of its items")
    return time.perf_counter() - started


@contextmanager
def executor_for(rig: Rig) -> Iterator[CeleryExecutor]:
    created = CeleryExecutor(rig.ours(CLIENTS_QUEUE).celery_app, queue=CLIENTS_QUEUE)
    try:
        yield created
    finally:
        created.shutdown(wait=True)


def rounds_of(mode: str, rig: Rig, advance: Advance) -> list[SteadyRound]:
    n, count = rig.sizes.steady_tasks, rig.sizes.steady_rounds
    found = []
    if mode == ONE:
        with executor_for(rig) as shared:
            for index in range(1, count + 1):
                found.append(settled(mode, index, n, one_round(shared, n)))
                advance()
        return found
    for index in range(1, count + 1):
        with executor_for(rig) as fresh:
            seconds = one_round(fresh, n)
        found.append(settled(mode, index, n, seconds))
        advance()
    return found


def measure_steady(rig: Rig, advance: Advance) -> list[SteadyRound]:
    """Every mode's rounds, traced from after a warm-up round (connections, imports, caches)."""
    with executor_for(rig) as warm:
        one_round(warm, min(rig.sizes.steady_tasks, 200))
    gc.collect()
    tracemalloc.start()
    try:
        return [row for mode in MODES for row in rounds_of(mode, rig, advance)]
    finally:
        tracemalloc.stop()


def growth(rows: list[SteadyRound], mode: str, value: Callable[[SteadyRound], int]) -> int | None:
    """Last round minus first round of ``mode`` (None when it has fewer than two rounds)."""
    mine = [row for row in rows if row.mode == mode]
    return value(mine[-1]) - value(mine[0]) if len(mine) >= 2 else None


def steady_or_problem(rig: Rig, advance: Advance) -> list[SteadyRound]:
    return rig.attempt("steady-state memory", lambda: measure_steady(rig, advance)) or []
