"""One soak run from start to verdict: cluster up, warm-up, baseline, the plan through the faults, the end state.

The order matters for what is measured: the executor is created and warmed up under ``tracemalloc`` before
the baseline; the futures become :class:`~producer.soak.flight.Record` s and the executor is shut down before
the second measurement; Redis is read only after that, so nothing of the executor can still be there
legitimately; the ledger is read last.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery_futures import CeleryExecutor
from producer.bench.machine import describe_machine, load_average
from producer.soak import memory as soak_memory
from producer.soak.checks import (
    Check,
    fault_checks,
    ledger_checks,
    memory_check,
    mix_check,
    outcome_checks,
    redis_checks,
    workers_check,
)
from producer.soak.cluster import QUEUE, Cluster
from producer.soak.drive import Driver
from producer.soak.faults import Faults, KillFigures, RestartRecord, kill_figures
from producer.soak.flight import Flight, Record
from producer.soak.memory import MemoryFigures, MemoryPoint
from producer.soak.plan import TaskSpec, make_plan
from producer.soak.redis_state import RedisFigures, inspect_redis, last_seen, numpat, result_prefix_of
from producer.terminal import Terminal
from worker.app import client_app
from worker.tasks.ledger import runs as ledger_runs

DEFAULT_CONCURRENCY: dict[str, int | None] = {"prefork": 2, "gevent": 20}
WARMUP_TASKS = 60
WARMUP_SECONDS = 60.0


@dataclass(frozen=True)
class SoakConfig:
    """Everything a run depends on; the CLI validates each value (``python -m producer.soak``)."""

    tasks: int = 10_000
    seed: int = 1
    concurrency: Mapping[str, int | None] = field(default_factory=lambda: dict(DEFAULT_CONCURRENCY))
    """Pool -> worker concurrency; two pools, all consuming one queue."""
    kill_pool: str = "gevent"
    """The pool whose worker is killed (gevent prefetches: its received-but-not-started tasks are stranded too)."""
    slow_seconds: float = 0.5
    window: int = 400
    """Futures outstanding at most, so submissions last the whole run."""
    batch: int = 50
    deadline_seconds: float = 900.0
    """The whole run's limit: past it nothing more is submitted or waited for, and what is left is reported."""
    stall_seconds: float = 60.0
    """Stop waiting once no future has ended for this long (four times the ~15 s a lost worker takes)."""
    memory_slack_bytes: int = 1024 * 1024
    workdir: Path = Path(".run/soak")

    @property
    def kill_at(self) -> int:
        return self.tasks // 3

    @property
    def restart_at(self) -> int:
        return 2 * self.tasks // 3

    @property
    def wipe_at(self) -> int:
        return 5 * self.tasks // 6


@dataclass
class Driven:
    """What the executor's part of the run leaves behind: compact records, nothing of the producer's."""

    records: list[Record]
    stuck: list[dict[str, Any]]
    kill: KillFigures | None
    restart: RestartRecord | None
    wipe: RestartRecord | None
    cancels: dict[str, int]
    interrupts: dict[str, int]
    submitted: int
    baseline: MemoryPoint
    executor_id: str
    result_prefix: str
    problems: list[str]


@dataclass
class SoakRun:
    config: SoakConfig
    run_id: str
    started_at: str
    finished_at: str
    seconds: float
    machine: dict[str, Any]
    workers: list[dict[str, Any]]
    driven: Driven
    memory: MemoryFigures
    redis: RedisFigures
    ledger: dict[str, int]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def run_soak(config: SoakConfig, terminal: Terminal) -> SoakRun:
    """Start the cluster in ``config.workdir``, run the soak on it, stop every process it started."""
    terminal.status(f"soak: starting Redis and {', '.join(config.concurrency)} workers in {config.workdir}/")
    cluster = Cluster.start(config.workdir, config.concurrency)
    try:
        return Soak(config, cluster, terminal).run()
    finally:
        cluster.stop()


@dataclass
class Soak:
    config: SoakConfig
    cluster: Cluster
    terminal: Terminal
    run_id: str = field(default_factory=lambda: f"soak-{uuid.uuid4().hex[:8]}")

    def run(self) -> SoakRun:
        started, began = now(), time.monotonic()
        deadline = began + self.config.deadline_seconds
        url = self.cluster.redis.url()
        machine = describe_machine(url)
        with self.cluster.redis.client() as probe:
            numpat_baseline = numpat(probe)
        soak_memory.start()
        try:
            driven = self.drive(make_plan(self.config.tasks, self.config.seed, self.config.slow_seconds), deadline)
            after = soak_memory.measure()
        finally:
            peak = soak_memory.peak_and_stop()
        memory = MemoryFigures(driven.baseline, after, peak)
        self.terminal.status("soak: reading what is left in Redis")
        with self.cluster.redis.client() as probe:
            found = inspect_redis(probe, executor_id=driven.executor_id, result_prefix=driven.result_prefix,
                                  queue=QUEUE, numpat_baseline=numpat_baseline)
        with self.cluster.ledger.client() as probe:
            ledger = ledger_runs(probe, self.run_id)
        machine["load_average_at_end"] = load_average()
        checks = self.verdict(driven, memory, found, ledger)
        return SoakRun(self.config, self.run_id, started, now(), time.monotonic() - began, machine,
                       self.workers(driven.kill), driven, memory, found, ledger, checks)

    def verdict(self, driven: Driven, memory: MemoryFigures, found: RedisFigures,
                ledger: dict[str, int]) -> list[Check]:
        records = driven.records
        return [*outcome_checks(records, restarted=driven.restart is not None, wiped=driven.wipe is not None),
                *ledger_checks(records, ledger),
                *fault_checks(driven.kill, driven.restart, driven.wipe, driven.submitted, driven.problems),
                mix_check(records, driven.cancels.get("won", 0)),
                memory_check(memory, self.config.memory_slack_bytes), workers_check(self.cluster.exited()),
                *redis_checks(found, len(driven.stuck))]

    def drive(self, plan: list[TaskSpec], deadline: float) -> Driven:
        """Everything that needs the executor; it is shut down and dropped before this returns."""
        executor = CeleryExecutor(client_app(self.cluster.redis.url()), queue=QUEUE)
        flight = Flight()
        try:
            problems = self.warm_up(executor, min(deadline, time.monotonic() + WARMUP_SECONDS))
            baseline = soak_memory.measure()
            faults = Faults(self.cluster, flight, self.config.kill_pool, self.config.kill_at,
                            self.config.restart_at, self.config.wipe_at, deadline)
            driver = Driver(executor, flight, self.run_id, self.config.window, self.config.batch, deadline,
                            stall_seconds=self.config.stall_seconds, hold_at=self.config.restart_at,
                            released=faults.restart_begun)
            faults.start()
            with self.terminal.progress("soak: futures done", len(plan)) as advance:
                driver.advance = advance
                if not driver.run_plan(plan):
                    problems.append(f"run stopped early: {driver.stopped}")
            faults.join()
            return self.collect(plan, flight, faults, driver, executor=executor, baseline=baseline, problems=problems)
        finally:
            done = not flight.outstanding_futures()
            executor.shutdown(wait=done, cancel_futures=not done)
            flight.drop()

    def collect(self, plan: list[TaskSpec], flight: Flight, faults: Faults, driver: Driver, *,
                executor: CeleryExecutor, baseline: MemoryPoint, problems: list[str]) -> Driven:
        records = flight.records(plan, faults.affected())
        outcomes = {r.index: r.outcome for r in records}
        result_prefix = result_prefix_of(executor.celery_app)
        return Driven(
            records=records, stuck=self.stuck(flight, plan, result_prefix),
            kill=kill_figures(faults.kill, flight.done_at, outcomes), restart=faults.restart, wipe=faults.wipe,
            cancels=dict(driver.cancels), interrupts=dict(driver.interrupts), submitted=flight.submitted,
            baseline=baseline, executor_id=executor.executor_id, result_prefix=result_prefix,
            problems=[*problems, *faults.problems])

    def stuck(self, flight: Flight, plan: list[TaskSpec], result_prefix: str) -> list[dict[str, Any]]:
        """The futures that never ended, each with where Redis last saw its task."""
        with self.cluster.redis.client() as client:
            return last_seen(client, flight.stuck(plan), result_prefix=result_prefix, queue=QUEUE)

    def warm_up(self, executor: CeleryExecutor, deadline: float) -> list[str]:
        """Run a small plan of every kind, so one-time imports and caches come before the baseline."""
        flight = Flight()
        driver = Driver(executor, flight, f"{self.run_id}-warmup", self.config.window, self.config.batch, deadline,
                        stall_seconds=self.config.stall_seconds)
        finished = driver.run_plan(make_plan(WARMUP_TASKS, self.config.seed + 1, self.config.slow_seconds))
        flight.drop()
        return [] if finished else [f"the warm-up did not finish within {WARMUP_SECONDS:.0f}s"]

    def workers(self, kill: KillFigures | None) -> list[dict[str, Any]]:
        def role(name: str) -> str:
            if kill and name == kill.worker:
                return f"killed after {kill.at_submitted} submissions"
            return "replacement" if kill and name == kill.replacement else "ran throughout"

        every = [*self.cluster.retired, *self.cluster.workers.values()]
        return [{"name": w.name, "pool": w.pool, "concurrency": w.concurrency, "role": role(w.name)} for w in every]

