"""Our executor against raw Celery, on the same prefork worker, in the same run, taking turns.

The no-op is ``cpu_bound(0)`` (a spin over an empty range): ``map`` needs one argument per call and
``noop()`` takes none, and all three clients must run the same task. Raw Celery is the idiom its docs teach:
``delay()`` for each task, then ``get()`` each result. Ours is ``submit`` then ``wait``, and ``map``.
Rounds rotate which client goes first, so slow drift on a shared machine hits each of them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import repeat

from producer.bench.rig import CLIENTS_QUEUE, Rig, collect, deadline_for, rotated, settle
from producer.terminal import Advance
from worker.tasks import demo as tasks

RAW, SUBMIT, MAP = "raw delay().get()", "executor.submit", "executor.map"
THROUGHPUT_VARIANTS = (RAW, SUBMIT, MAP)
LATENCY_VARIANTS = (RAW, SUBMIT)
WARM_UP_TASKS = 20
"""Sent by each client before anything is timed: connections, queue declarations, imports are not per task."""
NOOP_ARG = 0


@dataclass(frozen=True)
class ThroughputRun:
    """One timed batch: wall time from the first send to the last result, and the producer's share of it."""

    variant: str
    round: int
    tasks: int
    seconds: float
    send_seconds: float
    """Until every task was handed to Redis (the loop of sends, or the call to ``map``)."""
    producer_cpu_seconds: float
    """CPU time of this whole process (all threads: the caller and the result listener) during the batch."""
    redis_commands: int
    """Every command Redis ran meanwhile, from all clients: producer, workers, their background polling."""
    worker_main_cpu_seconds: float | None
    """CPU time of the prefork worker's main process meanwhile (None if its stats did not say)."""

    @property
    def tasks_per_second(self) -> float:
        return self.tasks / self.seconds


Batch = Callable[[Rig, int], float]
"""Runs ``n`` no-ops on the clients' queue, waits for every result, returns the seconds spent sending."""


def raw_batch(rig: Rig, n: int) -> float:
    task = rig.raw(tasks.cpu_bound)
    started = time.perf_counter()
    results = [task.delay(NOOP_ARG) for _ in range(n)]
    sent = time.perf_counter() - started
    check_noops(collect(results, deadline_for(n * 0.01)))
    return sent


def submit_batch(rig: Rig, n: int) -> float:
    executor = rig.ours(CLIENTS_QUEUE)
    started = time.perf_counter()
    futures = [executor.submit(tasks.cpu_bound, NOOP_ARG) for _ in range(n)]
    sent = time.perf_counter() - started
    check_noops(settle(futures, deadline_for(n * 0.01)))
    return sent


def map_batch(rig: Rig, n: int) -> float:
    executor = rig.ours(CLIENTS_QUEUE)
    started = time.perf_counter()
    results = executor.map(tasks.cpu_bound, repeat(NOOP_ARG, n), timeout=deadline_for(n * 0.01))
    sent = time.perf_counter() - started
    check_noops(list(results))
    return sent


BATCHES: dict[str, Batch] = {RAW: raw_batch, SUBMIT: submit_batch, MAP: map_batch}


def check_noops(results: list[object]) -> None:
    if any(result != 0 for result in results):
        raise AssertionError("a no-op returned something else than 0")


def timed_batch(rig: Rig, variant: str, round_index: int, n: int) -> ThroughputRun:
    """One batch, timed; the counters around it are read outside the timed part."""
    worker_cpu = rig.worker_cpu_seconds(CLIENTS_QUEUE)
    commands = rig.commands_so_far()
    started, cpu_started = time.perf_counter(), time.process_time()
    sent = BATCHES[variant](rig, n)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    commands = rig.commands_so_far() - commands - 1  # the first INFO itself
    worker_after = rig.worker_cpu_seconds(CLIENTS_QUEUE)
    worker = worker_after - worker_cpu if worker_cpu is not None and worker_after is not None else None
    return ThroughputRun(variant, round_index, n, seconds, sent, cpu, commands, worker)


def measure_throughput(rig: Rig, advance: Advance) -> list[ThroughputRun]:
    """``throughput_rounds`` rounds of each client, ``throughput_tasks`` no-ops each; one step per batch."""
    for variant in THROUGHPUT_VARIANTS:
        rig.attempt(f"throughput warm-up {variant}", partial(BATCHES[variant], rig, WARM_UP_TASKS))
    runs = []
    for round_index in range(rig.sizes.throughput_rounds):
        for variant in rotated(THROUGHPUT_VARIANTS, round_index):
            run = rig.attempt(f"throughput {variant} round {round_index + 1}",
                              partial(timed_batch, rig, variant, round_index, rig.sizes.throughput_tasks))
            if run is not None:
                runs.append(run)
            advance()
    return runs


def measure_latency(rig: Rig, advance: Advance) -> dict[str, list[float]]:
    """Seconds per sequential round trip of ``noop``, the clients taking turns call by call; one step."""
    raw_noop, executor = rig.raw(tasks.noop), rig.ours(CLIENTS_QUEUE)
    timeout = deadline_for(1)
    calls: dict[str, Callable[[], object]] = {
        RAW: lambda: raw_noop.delay().get(timeout=timeout),
        SUBMIT: lambda: executor.submit(tasks.noop).result(timeout=timeout),
    }
    samples: dict[str, list[float]] = {variant: [] for variant in LATENCY_VARIANTS}
    for index in range(rig.sizes.latency_calls):
        for variant in rotated(LATENCY_VARIANTS, index):
            started = time.perf_counter()
            calls[variant]()
            samples[variant].append(time.perf_counter() - started)
    advance()
    return samples


def latency_or_problem(rig: Rig, advance: Advance) -> dict[str, list[float]]:
    """:func:`measure_latency`, or no samples (and a problem line) if a call failed."""
    return rig.attempt("latency", lambda: measure_latency(rig, advance)) or {}
