"""Our executor against stock Celery, pool by pool, in the same run, round by round, the order rotating.

The clients, all running the same no-op (a spin over an empty range) and waiting for every result:

* **stock Celery**: ``delay()`` then ``get()`` each, on a stock worker (``bench/stock_app.py``,
  default settings, events on), and for threads and gevent also on one with ``result_backend_thread_safe``;
* **raw client, our worker**: the same stock client idiom on our worker: what our worker costs, apart from
  our client;
* **executor.submit** and **executor.map** on our worker.

For each batch: wall time, the worker's main-process CPU (its own rusage, from ``inspect stats``), its
prefork children's CPU (``/proc``: the workers run on this machine), and ``INFO commandstats`` by command
(every client's, with the idle workers' polling in it). Then, on prefork: the sequential round trip,
call by call in turn, and ``map(chunksize=N)`` against stock Celery's own ``task.chunks(items, N)``; on
threads: a makespan of blocking sleeps.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

from celery import Celery
from celery.canvas import chunks

from producer.bench.rig import Rig, collect, deadline_for, rotated, settle
from producer.terminal import Advance
from worker.tasks import demo as tasks

STOCK, STOCK_SAFE = "stock Celery", "stock Celery, thread-safe backend"
RAW_OURS, SUBMIT, MAP = "raw client, our worker", "executor.submit", "executor.map"
CHUNKED_OURS, CHUNKED_STOCK = "executor.map(chunksize)", "stock task.chunks()"
RACE_POOLS = ("prefork", "threads", "gevent")
SAFE_POOLS = ("threads", "gevent")
NOOP_ARG = 0
WARM_UP_TASKS = 20
PING_SECONDS = 2.0


def stock_queue(pool: str, *, thread_safe: bool = False) -> str:
    """The queue a stock worker of ``pool`` consumes (``scripts/local-cluster.sh`` starts them)."""
    return f"stock-{pool}-safe" if thread_safe else f"stock-{pool}"


def clients_of(pool: str) -> tuple[str, ...]:
    return (STOCK, STOCK_SAFE, RAW_OURS, SUBMIT, MAP) if pool in SAFE_POOLS else (STOCK, RAW_OURS, SUBMIT, MAP)


@dataclass(frozen=True)
class RaceRun:
    pool: str
    client: str
    round: int
    tasks: int
    seconds: float
    main_cpu_seconds: float | None
    """The worker's main process during the batch (None if its stats did not say)."""
    children_cpu_seconds: float | None
    """Its prefork children during the batch (None on pools without children)."""
    commands: dict[str, int]
    """Redis command -> calls during the batch, from every client."""


@dataclass
class StockRace:
    runs: list[RaceRun] = field(default_factory=list)
    latency_seconds: dict[str, list[float]] = field(default_factory=dict)
    chunked: list[RaceRun] = field(default_factory=list)
    sleeps: list[RaceRun] = field(default_factory=list)
    chunk_size: int = 0


@dataclass
class Racers:
    """The clients and the workers they run on, found among the workers of the run."""

    rig: Rig
    stock: Celery
    nodes: dict[str, str]
    """Queue -> the name of the one worker consuming it."""

    @classmethod
    def open(cls, rig: Rig) -> Racers:
        stock = Celery("stock-client", broker=rig.redis_url, backend=rig.redis_url)
        nodes = {queue: worker.name for worker in rig.workers for queue in worker.queues}
        return cls(rig, stock, nodes)

    def missing(self, pool: str) -> list[str]:
        wanted = [pool, stock_queue(pool)] + ([stock_queue(pool, thread_safe=True)] if pool in SAFE_POOLS else [])
        return [queue for queue in wanted if queue not in self.nodes]

    def queue_of(self, pool: str, client: str) -> str:
        if client in (STOCK, CHUNKED_STOCK):
            return stock_queue(pool)
        return stock_queue(pool, thread_safe=True) if client == STOCK_SAFE else pool

    def close(self) -> None:
        self.stock.close()


# -- what one worker has spent so far -----------------------------------------------------------------
def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process on this machine, from ``/proc/<pid>/stat``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


CLOCK_TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def worker_cpu(app: Celery, node: str) -> tuple[float | None, float | None]:
    """(main process, prefork children) CPU seconds of ``node`` so far."""
    stats: dict[str, Any] = app.control.inspect(destination=[node], timeout=PING_SECONDS).stats() or {}
    info = stats.get(node, {})
    rusage = info.get("rusage") or {}
    main = float(rusage["utime"]) + float(rusage["stime"]) if "utime" in rusage else None
    pids = [pid for pid in info.get("pool", {}).get("processes", []) if isinstance(pid, int)]
    children = [process_cpu_seconds(pid) for pid in pids]
    return main, (sum(c for c in children if c is not None) if pids else None)


def command_counts(rig: Rig) -> Counter[str]:
    return Counter({name.removeprefix("cmdstat_"): int(stats["calls"])
                    for name, stats in rig.redis.info("commandstats").items()})


def delta(after: float | None, before: float | None) -> float | None:
    return after - before if after is not None and before is not None else None


# -- the batches: each runs n tasks and waits for every result ----------------------------------------
Batch = Callable[[int], None]


def batch_for(racers: Racers, pool: str, client: str) -> Batch:
    rig, queue = racers.rig, racers.queue_of(pool, client)
    if client in (STOCK, STOCK_SAFE):
        return partial(stock_batch, racers.stock, queue)
    if client == RAW_OURS:
        return partial(raw_ours_batch, rig, queue)
    if client == SUBMIT:
        return partial(submit_batch, rig, queue)
    return partial(map_batch, rig, queue)


def stock_batch(app: Celery, queue: str, n: int) -> None:
    results = [app.send_task("stock.spin", (NOOP_ARG,), queue=queue) for _ in range(n)]
    check_noops(collect(results, deadline_for(n * 0.01)))


def raw_ours_batch(rig: Rig, queue: str, n: int) -> None:
    task = rig.raw(tasks.cpu_bound)
    results = [task.apply_async((NOOP_ARG,), queue=queue) for _ in range(n)]
    check_noops(collect(results, deadline_for(n * 0.01)))


def submit_batch(rig: Rig, queue: str, n: int) -> None:
    executor = rig.ours(queue)
    check_noops(settle([executor.submit(tasks.cpu_bound, NOOP_ARG) for _ in range(n)], deadline_for(n * 0.01)))


def map_batch(rig: Rig, queue: str, n: int, chunksize: int = 1) -> None:
    results = rig.ours(queue).map(tasks.cpu_bound, repeat(NOOP_ARG, n), timeout=deadline_for(n * 0.01),
                                  chunksize=chunksize)
    check_noops(list(results))


def stock_chunks_batch(app: Celery, queue: str, chunk_size: int, n: int) -> None:
    """Stock Celery's own answer: ``task.chunks(items, N)``, a group of ``celery.starmap`` tasks."""
    spin = app.signature("stock.spin")  # a signature is what chunks() takes at run time; the stubs say Task
    grouped = chunks(spin, [(NOOP_ARG,)] * n, chunk_size).apply_async(queue=queue)  # type: ignore[arg-type]
    check_noops([value for part in grouped.get(timeout=deadline_for(n * 0.001)) for value in part])


def check_noops(results: list[Any]) -> None:
    if any(result != 0 for result in results):
        raise AssertionError("a no-op returned something else than 0")


def timed(racers: Racers, pool: str, client: str, batch: Batch, *, round_index: int, n: int) -> RaceRun:
    """One batch, timed; the worker's counters and Redis's are read outside the timed part."""
    node = racers.nodes[racers.queue_of(pool, client)]
    main, children = worker_cpu(racers.stock, node)
    commands = command_counts(racers.rig)
    started = time.perf_counter()
    batch(n)
    seconds = time.perf_counter() - started
    counted = command_counts(racers.rig) - commands
    counted["info"] -= 1  # the first INFO itself
    main_after, children_after = worker_cpu(racers.stock, node)
    return RaceRun(pool, client, round_index, n, seconds, delta(main_after, main), delta(children_after, children),
                   dict(+counted))


# -- the sections -------------------------------------------------------------------------------------
def race_pool(racers: Racers, pool: str, advance: Advance) -> list[RaceRun]:
    """``throughput_rounds`` rounds of every client on ``pool``, ``throughput_tasks`` no-ops each."""
    rig, clients = racers.rig, clients_of(pool)
    for client in clients:
        rig.attempt(f"stock race warm-up {pool} {client}", partial(batch_for(racers, pool, client), WARM_UP_TASKS))
    runs = []
    for round_index in range(rig.sizes.throughput_rounds):
        for client in rotated(clients, round_index):
            run = rig.attempt(f"stock race {pool} {client} round {round_index + 1}",
                              partial(timed, racers, pool, client, batch_for(racers, pool, client),
                                      round_index=round_index, n=rig.sizes.throughput_tasks))
            if run is not None:
                runs.append(run)
        advance()
    return runs


def race_latency(racers: Racers) -> dict[str, list[float]]:
    """Seconds per sequential no-op round trip on prefork, the clients taking turns call by call."""
    rig, timeout = racers.rig, deadline_for(1)
    executor, raw_noop = rig.ours("prefork"), rig.raw(tasks.noop)
    stock_queue_name = stock_queue("prefork")
    calls: dict[str, Callable[[], object]] = {
        STOCK: lambda: racers.stock.send_task("stock.noop", queue=stock_queue_name).get(timeout=timeout),
        RAW_OURS: lambda: raw_noop.apply_async(queue="prefork").get(timeout=timeout),
        SUBMIT: lambda: executor.submit(tasks.noop).result(timeout=timeout),
    }
    samples: dict[str, list[float]] = {client: [] for client in calls}
    for index in range(rig.sizes.latency_calls):
        for client in rotated(list(calls), index):
            started = time.perf_counter()
            calls[client]()
            samples[client].append(time.perf_counter() - started)
    return samples


def race_chunks(racers: Racers, advance: Advance) -> list[RaceRun]:
    """``chunk_items`` no-ops in chunks of ``chunk_size`` on prefork: our map against stock ``chunks``."""
    rig, size, n = racers.rig, racers.rig.sizes.chunk_size, racers.rig.sizes.chunk_items
    batches: dict[str, Batch] = {
        CHUNKED_OURS: partial(map_batch, rig, "prefork", chunksize=size),
        CHUNKED_STOCK: partial(stock_chunks_batch, racers.stock, stock_queue("prefork"), size),
    }
    runs = []
    for round_index in range(rig.sizes.throughput_rounds):
        for client in rotated(list(batches), round_index):
            run = rig.attempt(f"stock race chunks {client} round {round_index + 1}",
                              partial(timed, racers, "prefork", client, batches[client], round_index=round_index, n=n))
            if run is not None:
                runs.append(run)
        advance()
    return runs


def race_sleeps(racers: Racers, advance: Advance) -> list[RaceRun]:
    """``io_tasks`` blocking sleeps on threads: what overlapping waits costs each client, as makespan."""
    rig = racers.rig
    seconds = rig.sizes.io_task_seconds
    deadline = deadline_for(rig.sizes.io_tasks * seconds)

    def stock_sleeps(queue: str, n: int) -> None:
        collect([racers.stock.send_task("stock.sleep", (seconds,), queue=queue) for _ in range(n)], deadline)

    def our_sleeps(n: int) -> None:
        executor = rig.ours("threads")
        settle([executor.submit(tasks.io_sleep, seconds) for _ in range(n)], deadline)

    batches: dict[str, Batch] = {
        STOCK: partial(stock_sleeps, stock_queue("threads")),
        STOCK_SAFE: partial(stock_sleeps, stock_queue("threads", thread_safe=True)),
        SUBMIT: our_sleeps,
    }
    runs = []
    for round_index in range(rig.sizes.throughput_rounds):
        for client in rotated(list(batches), round_index):
            run = rig.attempt(f"stock race sleeps {client} round {round_index + 1}",
                              partial(timed, racers, "threads", client, batches[client], round_index=round_index,
                                      n=rig.sizes.io_tasks))
            if run is not None:
                runs.append(run)
        advance()
    return runs


def steps(rig: Rig) -> int:
    """How many progress steps :func:`race` takes: a round per pool, for chunks and for sleeps; one latency."""
    return rig.sizes.throughput_rounds * (len(RACE_POOLS) + 2) + 1


def race(rig: Rig, advance: Advance) -> StockRace | None:
    """Every section against stock Celery, or None (and a problem line) without the stock workers."""
    racers = Racers.open(rig)
    try:
        missing = sorted({queue for pool in RACE_POOLS for queue in racers.missing(pool)})
        if missing:
            rig.problems.append(f"stock race: no worker consumes {', '.join(missing)} "
                                "(scripts/local-cluster.sh starts the stock workers); the section is skipped")
            return None
        result = StockRace(chunk_size=rig.sizes.chunk_size)
        for pool in RACE_POOLS:
            result.runs += race_pool(racers, pool, advance)
        result.latency_seconds = rig.attempt("stock race latency", partial(race_latency, racers)) or {}
        advance()
        result.chunked = race_chunks(racers, advance)
        result.sleeps = race_sleeps(racers, advance)
        return result
    finally:
        racers.close()
