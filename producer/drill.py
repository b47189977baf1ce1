"""``producer drill``: the soak's seeded mix of ledger tasks on the cluster you point it at, judged by the
side-effect ledger, while you (or a test) break something: kill a worker, restart Redis, fail it over.

The soak (``python -m producer.soak``) starts its own cluster and injects its own faults at known moments. A
drill starts nothing and injects nothing, so it cannot know which fault came when; what it checks holds
whatever the fault was:

* every future ends: none is left once ``--deadline`` passes or no future has ended for ``--stall`` seconds;
* each outcome is one its kind allows, or one that names a fault (a send refused, Redis unreachable or its
  data lost, a worker lost); the document counts the fault outcomes by name, so a caller that knows which
  fault it caused can hold them to it (a failover loses no worker);
* the ledger agrees: a cancelled task, one that could not be sent and one whose message Redis lost never
  ran; no task ran more often than its policy; every success ran and returned its own token.

Its figure is the longest stall: the longest time while futures were outstanding in which none ended, which
is what the fault cost the producer. The ledger lives where ``LEDGER_REDIS_URL`` says (a Redis outside the
fault, so a failover cannot take the evidence with it), else beside the results.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis

from celery_futures import CeleryExecutor
from producer.cluster import queue_of, wait_for_workers
from producer.session import Session
from producer.soak.checks import (
    DATA_LOST,
    LOST_WORKER,
    Check,
    by_restart,
    duplicates,
    ledger_checks,
    outcome_checks,
    outcomes_by_kind,
)
from producer.soak.drive import Driver
from producer.soak.flight import Flight, Record
from producer.soak.plan import TaskSpec, make_plan
from producer.soak.redis_state import last_seen, result_prefix_of
from worker import constants as c
from worker.tasks.ledger import runs

WORKER_WAIT_SECONDS = 60.0
BATCH = 25
HELD_UP_SHOWN = 5


@dataclass(frozen=True)
class DrillConfig:
    tasks: int = 600
    seed: int = 1
    slow_seconds: float = 0.5
    window: int = 200
    """Futures outstanding at most, so submissions go on through the fault."""
    deadline_seconds: float = 300.0
    stall_seconds: float = 60.0


def run_drill(session: Session, config: DrillConfig) -> bool:
    """Run the plan, judge it, show and record the verdict; True if every check passed."""
    executor, terminal = session.executor(), session.terminal
    wait_for_workers(executor, queue_of(executor), WORKER_WAIT_SECONDS, terminal)
    run_id = f"drill-{uuid.uuid4().hex[:8]}"
    plan = make_plan(config.tasks, config.seed, config.slow_seconds)
    flight = Flight()
    began = time.monotonic()
    driver = Driver(executor, flight, run_id, config.window, BATCH, began + config.deadline_seconds,
                    stall_seconds=config.stall_seconds)
    with terminal.progress("drill: futures done", len(plan)) as advance:
        driver.advance = advance
        driver.run_plan(plan)
    seconds = time.monotonic() - began
    # A drill knows of no particular fault, so every future may have met any: the records all count as touched.
    records = flight.records(plan, {spec.index for spec in plan})
    ledger = read_ledger(executor, run_id)
    checks = [*outcome_checks(records, restarted=True, wiped=True), *ledger_checks(records, ledger)]
    stall = Stall.of(flight, plan, began)
    terminal.record("never_ended", never_ended(executor, flight, plan))
    terminal.record("held_up", stall.held_up)
    show(session, records, ledger, checks, seconds=seconds, stall=stall.seconds, stopped=driver.stopped)
    return all(check.passed for check in checks)


@dataclass(frozen=True)
class Stall:
    """The longest time, from the start or from one future's end, until the next future ended."""

    seconds: float
    held_up: list[dict[str, Any]]
    """The first futures to end after it, with their task ids (to find in the workers' logs) and when they
    ended, in seconds from the start."""

    @classmethod
    def of(cls, flight: Flight, plan: list[TaskSpec], began: float) -> Stall:
        ended = sorted(flight.done_at.items(), key=lambda item: item[1])
        gaps = [later - earlier for earlier, later in itertools.pairwise([began, *(at for _, at in ended)])]
        if not gaps:
            return cls(0.0, [])
        longest = max(gaps)
        first = gaps.index(longest)
        return cls(longest, [{"token": plan[index].token, "kind": plan[index].kind.value,
                                "task_id": flight.futures[index].task_id, "ended_after_seconds": round(at - began, 2)}
                               for index, at in ended[first:first + HELD_UP_SHOWN]])


def never_ended(executor: CeleryExecutor, flight: Flight, plan: list[TaskSpec]) -> list[dict[str, Any]]:
    """The futures that never ended, each with where Redis last saw its task (what to look for in the logs)."""
    return last_seen(executor.redis, flight.stuck(plan), result_prefix=result_prefix_of(executor.celery_app),
                     queue=queue_of(executor))


def read_ledger(executor: CeleryExecutor, run_id: str) -> dict[str, int]:
    """Token -> runs, from ``LEDGER_REDIS_URL`` (where the workers' ledger tasks write it) or the results' Redis."""
    url = os.environ.get(c.ENV_LEDGER_REDIS_URL)
    client = redis.Redis.from_url(url) if url else executor.redis
    try:
        return runs(client, run_id)
    finally:
        if url:
            client.close()


def fault_outcomes(records: list[Record]) -> dict[str, int]:
    """How many futures ended with each outcome that names a fault (``redis.*`` errors under their names)."""
    faults = Counter(record.outcome for record in records
                     if by_restart(record.outcome) or record.outcome in (DATA_LOST, *LOST_WORKER))
    return dict(faults)


def show(session: Session, records: list[Record], ledger: dict[str, int], checks: list[Check], *,
         seconds: float, stall: float, stopped: str | None) -> None:
    terminal = session.terminal
    terminal.record("figures", {"tasks": len(records), "seconds": round(seconds, 2),
                                "longest_stall_seconds": round(stall, 2), "stopped": stopped,
                                "fault_outcomes": fault_outcomes(records),
                                "duplicates": duplicates(records, ledger)})
    terminal.table("outcomes", "Outcomes by kind", ["kind", "outcomes"],
                   [[kind, ", ".join(f"{name} {n}" for name, n in counts.items())]
                    for kind, counts in outcomes_by_kind(records).items()])
    terminal.table("checks", "Checks", ["check", "passed", "measured", "detail"],
                   [[check.name, check.passed, check.measured, check.detail] for check in checks])
    terminal.line(f"drill: {len(records)} tasks in {seconds:.1f}s; the longest stall {stall:.1f}s; "
                  + ("every check passed" if all(check.passed for check in checks) else "SOME CHECKS FAILED"))
