"""A run's raw numbers, and what is derived from them: medians, percentiles, ratios and the targets' verdicts.

Nothing here measures; everything here is a pure function of :class:`BenchResults`, so the report, the JSON
and the terminal all show the same derived numbers. Speed targets are checked here, for the report's
pass/fail column only: the run's exit status says whether the measurements worked, not how fast they were.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from producer.bench.commands import MAP_CHUNKED, CommandCount
from producer.bench.executor import LATENCY_VARIANTS, MAP, RAW, SUBMIT, THROUGHPUT_VARIANTS, ThroughputRun
from producer.bench.memory import CELERY_FUTURE, MemoryCost
from producer.bench.pools import PoolRun, Workload
from producer.bench.rig import Sizes
from producer.bench.steady import FLAT_BYTES, MODES, SteadyRound, growth
from producer.bench.stock.race import StockRace
from producer.bench.stock.verdict import goals, standings
from producer.cluster import WorkerInfo

KIB = 1024


@dataclass
class BenchResults:
    """Every number a run measured, with where and when; ``problems`` lists what could not be measured."""

    quick: bool
    sizes: Sizes
    started_at: str
    finished_at: str
    machine: dict[str, Any]
    workers: list[WorkerInfo]
    throughput: list[ThroughputRun]
    latency_seconds: dict[str, list[float]]
    commands: list[CommandCount]
    memory: list[MemoryCost]
    steady: list[SteadyRound]
    workloads: list[Workload]
    pools: list[PoolRun]
    problems: list[str]
    stock: StockRace | None = None
    """The race against stock Celery (None when its workers were not there)."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Speed:
    variant: str
    rounds: int
    tasks_per_second: float
    """Median over the rounds."""
    vs_raw: float | None
    send_ms_per_task: float
    producer_cpu_ms_per_task: float
    redis_commands_per_task: float
    """Median over the rounds, every client counted (``INFO commandstats``)."""
    worker_main_cpu_ms_per_task: float | None
    """Median over the rounds: the prefork worker's main process, which handles every task in one thread."""
    every_round: list[float]


@dataclass(frozen=True)
class Latency:
    variant: str
    calls: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    p50_vs_raw: float | None
    p99_vs_raw: float | None


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    goal: str
    passed: bool | None
    """None: not measured in this run (see the problems)."""


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def speeds(runs: list[ThroughputRun]) -> list[Speed]:
    by_variant = {v: [r for r in runs if r.variant == v] for v in THROUGHPUT_VARIANTS}
    medians = {v: statistics.median(r.tasks / r.seconds for r in found) for v, found in by_variant.items() if found}
    return [
        Speed(variant, len(found), medians[variant], ratio(medians[variant], medians.get(RAW)),
              1000 * statistics.median(r.send_seconds / r.tasks for r in found),
              1000 * statistics.median(r.producer_cpu_seconds / r.tasks for r in found),
              statistics.median(r.redis_commands / r.tasks for r in found),
              median_or_none([1000 * r.worker_main_cpu_seconds / r.tasks for r in found
                              if r.worker_main_cpu_seconds is not None]),
              [r.tasks / r.seconds for r in found])
        for variant, found in by_variant.items() if found
    ]


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def latencies(samples: dict[str, list[float]]) -> list[Latency]:
    found = {v: samples[v] for v in LATENCY_VARIANTS if len(samples.get(v, [])) >= 2}
    p50 = {v: percentile(s, 50) for v, s in found.items()}
    p99 = {v: percentile(s, 99) for v, s in found.items()}
    return [
        Latency(variant, len(s), 1000 * p50[variant], 1000 * p99[variant], 1000 * statistics.fmean(s),
                ratio(p50[variant], p50.get(RAW)), ratio(p99[variant], p99.get(RAW)))
        for variant, s in found.items()
    ]


def memory_per_task(costs: list[MemoryCost], variant: str) -> float | None:
    found = [cost.client_bytes / cost.count for cost in costs if cost.variant == variant]
    return found[0] if found else None


def check(name: str, measured: float | None, goal: str, meets: Callable[[float], bool]) -> Target:
    return Target(name, measured, goal, None if measured is None else meets(measured))


def targets(results: BenchResults) -> list[Target]:
    """The benchmark's goals, each with the number it is judged on."""
    speed = {s.variant: s.vs_raw for s in speeds(results.throughput)}
    p50 = {lat.variant: lat.p50_vs_raw for lat in latencies(results.latency_seconds)}
    memory = memory_per_task(results.memory, CELERY_FUTURE)
    return [
        check(f"no-op throughput, {SUBMIT} / raw", speed.get(SUBMIT), ">= 1.0x", lambda x: x >= 1.0),
        check(f"no-op throughput, {MAP} / raw", speed.get(MAP), ">= 1.3x", lambda x: x >= 1.3),
        check(f"round trip p50, {SUBMIT} / raw", p50.get(SUBMIT), "<= 1.15x", lambda x: x <= 1.15),
        check("client memory per pending future (bytes)", memory, "<= 3 KiB (3072)", lambda x: x <= 3 * KIB),
        *(check(f"producer Redis commands per task, {c.variant}", c.producer_per_task,
                "< 1" if c.variant == MAP_CHUNKED else "<= 2",
                (lambda x: x < 1) if c.variant == MAP_CHUNKED else (lambda x: x <= 2))
          for c in results.commands if c.variant != RAW),
        *(check(f"producer memory, last round over first, {mode} (traced bytes)",
                growth(results.steady, mode, lambda row: row.traced_bytes), f"<= {FLAT_BYTES:,}",
                lambda x: x <= FLAT_BYTES) for mode in MODES if results.steady),
    ]


def document(results: BenchResults) -> dict[str, Any]:
    """results.json: every number measured (``measured``), then what the report derives from them (``summary``)."""
    return {
        "ok": results.ok,
        "problems": results.problems,
        "quick": results.quick,
        "started_at": results.started_at,
        "finished_at": results.finished_at,
        "machine": results.machine,
        "workers": [asdict(w) for w in results.workers],
        "sizes": asdict(results.sizes),
        "measured": {
            "throughput_runs": [asdict(r) for r in results.throughput],
            "latency_seconds": results.latency_seconds,
            "commands": [asdict(c) for c in results.commands],
            "memory": [asdict(m) for m in results.memory],
            "steady_state_memory": [asdict(row) for row in results.steady],
            "workloads": [asdict(w) for w in results.workloads],
            "pool_runs": [asdict(p) for p in results.pools],
            "stock": None if results.stock is None else asdict(results.stock),
        },
        "summary": {
            "throughput": [asdict(s) for s in speeds(results.throughput)],
            "latency": [asdict(lat) for lat in latencies(results.latency_seconds)],
            "producer_commands_per_task": {c.variant: c.producer_per_task for c in results.commands},
            "other_commands_per_task": {c.variant: c.others_per_task for c in results.commands},
            "client_bytes_per_pending_task": {m.variant: m.client_bytes / m.count for m in results.memory},
            "redis_bytes_per_queued_task": {m.variant: m.redis_bytes / m.count for m in results.memory
                                            if m.redis_bytes is not None},
            "pools_makespan_over_ideal": [{**asdict(p), "ratio": p.ratio} for p in results.pools],
        },
        "targets": [asdict(t) for t in targets(results)],
        "stock": None if results.stock is None else {
            "standings": [asdict(row) for row in standings(results.stock.runs)],
            "chunks": [asdict(row) for row in standings(results.stock.chunked)],
            "sleeps": [asdict(row) for row in standings(results.stock.sleeps)],
            "targets": [asdict(g) for g in goals(results.stock)],
        },
    }
