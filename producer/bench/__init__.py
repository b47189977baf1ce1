"""``python -m producer bench``: the benchmark matrix, measured on the running workers, written to
bench/results/<date>/.

The clients (``executor``, ``commands``, ``memory``): our executor against raw Celery on the prefork worker:
no-op throughput, round-trip latency, Redis commands and client memory per task. Against stock Celery
(``stock``): the same no-ops, round trips, chunked maps and sleeps on stock Celery's own workers, pool by
pool. The pools (``pools``): every pool on CPU and IO workloads, makespan over the ideal, both clients side by side.
The cluster is whatever ``REDIS_URL`` reaches, with one worker per pool on a queue named after it
(``scripts/local-cluster.sh``; ``scripts/bench.sh`` starts one, runs this, and stops it).

Returns False (exit status 1) when something could not be measured; speed targets only get a pass/fail
column in the report, because timings on a shared machine are facts to record, not a test to pass.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from producer.bench.commands import VARIANTS as COMMAND_VARIANTS
from producer.bench.commands import commands_or_problem
from producer.bench.executor import THROUGHPUT_VARIANTS, latency_or_problem, measure_throughput
from producer.bench.machine import describe_machine, load_average
from producer.bench.memory import VARIANTS as MEMORY_VARIANTS
from producer.bench.memory import memory_or_problem
from producer.bench.pools import measure_pools, workloads
from producer.bench.report import show, write
from producer.bench.rig import CLIENTS_QUEUE, FULL, QUICK, Rig
from producer.bench.steady import MODES as STEADY_MODES
from producer.bench.steady import steady_or_problem
from producer.bench.stock.race import RACE_POOLS, race
from producer.bench.stock.race import steps as race_steps
from producer.bench.summary import BenchResults
from producer.session import Session

RESULTS_ROOT = Path("bench/results")


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def run_bench(session: Session, out: str | None) -> bool:
    """Measure everything, write results.json, report.md and the PNGs, print the tables; True if all worked."""
    started = now()
    rig = Rig.open(session, QUICK if session.quick else FULL)
    try:
        results = measure(rig, started)
    finally:
        rig.close()
    folder = Path(out) if out else RESULTS_ROOT / started[:10]
    written = write(results, folder)
    show(session.terminal, results)
    session.terminal.record("files", [str(path) for path in written])
    session.terminal.status(f"bench: wrote {len(written)} files to {folder}/")
    for problem in results.problems:
        session.terminal.error(problem)
    return results.ok


def measure(rig: Rig, started: str) -> BenchResults:
    """Every section in turn, each with its own progress bar that advances one step per matrix cell."""
    progress, sizes = rig.session.terminal.progress, rig.sizes
    machine = describe_machine(rig.redis_url)
    throughput, latency, commands = [], {}, []
    if CLIENTS_QUEUE in rig.pools:  # else Rig.open has said why, and the tasks would wait for ever
        with progress("executor throughput", sizes.throughput_rounds * len(THROUGHPUT_VARIANTS)) as advance:
            throughput = measure_throughput(rig, advance)
        with progress("round-trip latency", 1) as advance:
            latency = latency_or_problem(rig, advance)
        with progress("redis commands per task", len(COMMAND_VARIANTS)) as advance:
            commands = commands_or_problem(rig, advance)
    stock = None
    if all(pool in rig.pools for pool in RACE_POOLS):
        with progress("against stock celery", race_steps(rig)) as advance:
            stock = race(rig, advance)
    with progress("memory per pending task", len(MEMORY_VARIANTS)) as advance:
        memory = memory_or_problem(rig, advance)
    steady = []
    if CLIENTS_QUEUE in rig.pools:
        with progress("producer memory, round after round", len(STEADY_MODES) * sizes.steady_rounds) as advance:
            steady = steady_or_problem(rig, advance)
    loads = workloads(rig)
    with progress("pools x workloads", len(rig.pools) * len(loads)) as advance:
        pools = measure_pools(rig, loads, advance)
    machine["load_average_at_end"] = load_average()
    return BenchResults(rig.session.quick, sizes, started, now(), machine, rig.workers, throughput, latency,
                        commands, memory, steady, loads, pools, rig.problems, stock)
