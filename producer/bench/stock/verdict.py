"""What the race against stock Celery says: medians per pool and client, ratios to stock, and the targets.

Pure functions of :class:`~producer.bench.stock.race.StockRace`; ratios always compare two numbers of the
same run. Throughput ratios are ours over stock (higher is better); latency and makespan ratios are ours
over stock too (lower is better).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from producer.bench.stock.race import (
    CHUNKED_OURS,
    CHUNKED_STOCK,
    MAP,
    STOCK,
    STOCK_SAFE,
    SUBMIT,
    RaceRun,
    StockRace,
)

TOP_COMMANDS = 6


@dataclass(frozen=True)
class Standing:
    """One client on one pool, over its rounds."""

    pool: str
    client: str
    rounds: int
    tasks_per_second: float
    """Median over the rounds."""
    slowest: float
    fastest: float
    seconds: float
    """Median wall time of a batch (the makespan, for sleeps)."""
    main_cpu_ms_per_task: float | None
    children_cpu_ms_per_task: float | None
    commands_per_task: float
    top_commands: dict[str, float]
    """The most frequent commands, per task (median over the rounds)."""


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def per_task(runs: list[RaceRun], value: Callable[[RaceRun], float | None]) -> float | None:
    found = [1000 * v / run.tasks for run in runs if (v := value(run)) is not None]
    return median_or_none(found)


def top_commands(runs: list[RaceRun]) -> dict[str, float]:
    totals: Counter[str] = Counter()
    for run in runs:
        totals.update(run.commands)
    names = [name for name, _ in totals.most_common(TOP_COMMANDS)]
    return {name: statistics.median(run.commands.get(name, 0) / run.tasks for run in runs) for name in names}


def standing(runs: list[RaceRun]) -> Standing:
    speeds = [run.tasks / run.seconds for run in runs]
    return Standing(runs[0].pool, runs[0].client, len(runs), statistics.median(speeds), min(speeds), max(speeds),
                    statistics.median(run.seconds for run in runs),
                    per_task(runs, lambda run: run.main_cpu_seconds),
                    per_task(runs, lambda run: run.children_cpu_seconds),
                    statistics.median(sum(run.commands.values()) / run.tasks for run in runs),
                    top_commands(runs))


def standings(runs: list[RaceRun]) -> list[Standing]:
    """One row per (pool, client), in the order first seen."""
    groups: dict[tuple[str, str], list[RaceRun]] = {}
    for run in runs:
        groups.setdefault((run.pool, run.client), []).append(run)
    return [standing(group) for group in groups.values()]


def lookup(rows: list[Standing], pool: str, client: str) -> Standing | None:
    return next((row for row in rows if row.pool == pool and row.client == client), None)


def speed_ratio(rows: list[Standing], pool: str, ours: str, stock: str = STOCK) -> float | None:
    mine, theirs = lookup(rows, pool, ours), lookup(rows, pool, stock)
    return mine.tasks_per_second / theirs.tasks_per_second if mine and theirs else None


def percentile(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def latency_ratio(race: StockRace, client: str, pct: int) -> float | None:
    ours, stock = race.latency_seconds.get(client, []), race.latency_seconds.get(STOCK, [])
    if len(ours) < 2 or len(stock) < 2:
        return None
    return percentile(ours, pct) / percentile(stock, pct)


def makespan_ratio(race: StockRace) -> float | None:
    rows = standings(race.sleeps)
    ours, stock = lookup(rows, "threads", SUBMIT), lookup(rows, "threads", STOCK)
    return ours.seconds / stock.seconds if ours and stock else None


def chunk_ratio(race: StockRace, against: str) -> float | None:
    """Our chunked map's items/s over stock's chunks (``CHUNKED_STOCK``) or stock's one task per item."""
    ours = lookup(standings(race.chunked), "prefork", CHUNKED_OURS)
    base = (lookup(standings(race.chunked), "prefork", CHUNKED_STOCK) if against == CHUNKED_STOCK
            else lookup(standings(race.runs), "prefork", STOCK))
    return ours.tasks_per_second / base.tasks_per_second if ours and base else None


@dataclass(frozen=True)
class Goal:
    name: str
    measured: float | None
    goal: str
    passed: bool | None


def goal(name: str, measured: float | None, floor: float | None = None, ceiling: float | None = None) -> Goal:
    text = f">= {floor}x" if floor is not None else f"<= {ceiling}x"
    passed = None if measured is None else (measured >= floor if floor is not None else measured <= (ceiling or 0))
    return Goal(name, measured, text, passed)


def goals(race: StockRace) -> list[Goal]:
    """The targets against stock Celery, each judged on a ratio from this run."""
    rows, size = standings(race.runs), race.chunk_size
    return [
        goal("prefork no-op, executor.submit / stock", speed_ratio(rows, "prefork", SUBMIT), floor=1.0),
        goal("prefork no-op, executor.map / stock", speed_ratio(rows, "prefork", MAP), floor=1.3),
        goal(f"prefork map(chunksize={size}) / stock one task per item", chunk_ratio(race, STOCK), floor=5.0),
        goal(f"prefork map(chunksize={size}) / stock chunks(..., {size})", chunk_ratio(race, CHUNKED_STOCK),
             floor=1.0),
        goal("gevent no-op, executor.submit / stock", speed_ratio(rows, "gevent", SUBMIT), floor=2.0),
        goal("gevent no-op, executor.map / stock", speed_ratio(rows, "gevent", MAP), floor=2.0),
        goal("gevent no-op, executor.submit / stock thread-safe", speed_ratio(rows, "gevent", SUBMIT, STOCK_SAFE),
             floor=1.2),
        goal("gevent no-op, executor.map / stock thread-safe", speed_ratio(rows, "gevent", MAP, STOCK_SAFE),
             floor=1.2),
        goal("threads sleeps makespan, executor / stock", makespan_ratio(race), ceiling=1.0),
        goal("sequential round trip p50, executor / stock", latency_ratio(race, SUBMIT, 50), ceiling=1.0),
        goal("sequential round trip p99, executor / stock", latency_ratio(race, SUBMIT, 99), ceiling=1.0),
    ]
