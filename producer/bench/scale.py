"""``python -m producer.bench.scale``: 1 → 2 → 4 → 8 worker containers of one pool, two producers, CPU and IO.

Each step scales the stack's ``worker`` service (``docker compose up -d --wait --scale worker=N``, every
container one "host" with ``--concurrency`` slots, 1 by default so a container stands for one core), waits
until exactly N workers answer on the queue, then lets two producer processes submit their share of the
workload at the same moment (a barrier), each through its own ``CeleryExecutor``. Throughput is all tasks
over the makespan, from the first producer's first send to the last result either producer saw.

* CPU (``cpu_bound(n)``, about 50 ms of pure Python each): a container runs one at a time, so the curve rises
  until the containers outnumber this machine's cores and is flat after that.
* IO (``io_sleep(0.1)``, a blocking sleep): waiting needs no core, so every container adds a lane; the
  curve stops where the per-task cost of Celery and Redis (CPU of the workers' main processes, Redis's one
  thread, the producers) fills the cores instead.

Each cell also reads Redis's own counters before and after (``INFO commandstats``, ``INFO cpu``): commands
per task, and the CPU Redis spent per task beyond what the same cluster costs it idle (sampled for
``IDLE_SECONDS`` before each step: blocking polls, heartbeats, Redis's own cron); its inverse is what one
Redis core would carry of this workload (the producers' connect and shutdown are in it, a few dozen commands).

Compose's own variables pick the stack (``COMPOSE_PROJECT_NAME``, ``COMPOSE_FILE``, ``COMPOSE_ENV_FILES``),
``REDIS_URL`` (or ``--redis-url``) is how this host reaches its Redis; ``scripts/scale.sh`` sets both for the
default stack. The service is put back to one container with the stack's own settings at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from celery_futures import CeleryExecutor
from producer.bench.machine import describe_machine
from producer.bench.pools import Workload, alone_seconds, spin_size
from producer.bench.report import markdown_table
from producer.bench.rig import deadline_for, settle
from producer.bench.table import Table
from producer.cluster import workers
from producer.terminal import save_bar_chart
from worker import functions
from worker.app import client_app
from worker.tasks import demo as tasks

SERVICE = "worker"
QUEUE = "celery"
PRODUCERS = 2
CPU_TASK_SECONDS = 0.05
IO_TASK_SECONDS = 0.1
READY_SECONDS = 120.0
"""How long N containers get to start and answer (a cold prefork container takes a few seconds)."""
INSPECT_SECONDS = 2.0
IDLE_SECONDS = 5.0
"""How long Redis's idle CPU rate is sampled before each step's rounds (the window is timed, not waited on)."""


@dataclass(frozen=True)
class Step:
    containers: int
    concurrency: int
    workload: str
    tasks: int
    makespans: tuple[float, ...]
    """One per round, seconds."""
    ideal: float
    redis_commands: int
    """Commands Redis ran during the rounds, from every client (``INFO commandstats``)."""
    redis_cpu_seconds: float
    """CPU Redis spent during the rounds (``INFO cpu``, user + system, main thread and all)."""
    wall_seconds: float
    """How long the rounds took, producers' start and stop included."""
    redis_idle_cpu_per_second: float
    """Redis's CPU rate with these containers connected and nothing to do (polls, heartbeats, its cron)."""

    @property
    def commands_per_task(self) -> float:
        return self.redis_commands / (self.tasks * len(self.makespans))

    @property
    def redis_cpu_ms_per_task(self) -> float:
        """Redis CPU per task beyond what the same cluster costs it idle."""
        busy = self.redis_cpu_seconds - self.redis_idle_cpu_per_second * self.wall_seconds
        return max(0.0, busy) * 1000 / (self.tasks * len(self.makespans))

    @property
    def redis_tasks_per_second(self) -> float:
        """What one Redis core would carry of this workload if nothing else limited it."""
        return 1000 / self.redis_cpu_ms_per_task if self.redis_cpu_ms_per_task else 0.0

    @property
    def makespan(self) -> float:
        return statistics.median(self.makespans)

    @property
    def tasks_per_second(self) -> float:
        return self.tasks / self.makespan


@dataclass(frozen=True)
class ScaleRun:
    concurrency: int
    machine: dict[str, Any]
    steps: list[Step]
    problems: list[str]

    @property
    def cores(self) -> int:
        return int(self.machine["cores"])

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.steps)

    def speedups(self) -> dict[tuple[str, int], float]:
        """Each cell's throughput over the same workload's on the first step's containers."""
        first = self.steps[0].containers
        base = {s.workload: s.tasks_per_second for s in self.steps if s.containers == first}
        return {(s.workload, s.containers): s.tasks_per_second / base[s.workload] for s in self.steps}


# -- the two producers ---------------------------------------------------------------------------------


def produce(redis_url: str, load: Workload, count: int, timeout: float, ready: Any) -> tuple[float, float]:
    """One producer process: connect, wait for the other at ``ready`` (a Barrier), submit ``count`` calls,
    settle them all. Returns the wall-clock time of the first send and of the last result."""
    executor = CeleryExecutor(client_app(redis_url), queue=QUEUE)
    try:
        task = executor.celery_app.tasks[load.task]
        ready.wait(timeout)
        started = time.time()
        settle([executor.submit(task, *load.args) for _ in range(count)], timeout)
        return started, time.time()
    finally:
        executor.shutdown(cancel_futures=True)


def run_round(redis_url: str, load: Workload, timeout: float) -> float:
    """Both producers at once, each in its own process (its own GIL, connections and listener)."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PRODUCERS) as pool:
        ready = manager.Barrier(PRODUCERS)
        share = load.tasks // PRODUCERS
        pending = [pool.apply_async(produce, (redis_url, load, share, timeout, ready))
                   for _ in range(PRODUCERS)]
        spans = [result.get(timeout + 60) for result in pending]
    return max(end for _, end in spans) - min(start for start, _ in spans)


# -- the containers ------------------------------------------------------------------------------------


def compose(*args: str, env: dict[str, str] | None = None) -> str:
    """``docker compose`` with compose's own variables from this environment; its error text on failure."""
    done = subprocess.run(["docker", "compose", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, check=False)
    if done.returncode:
        raise RuntimeError(f"docker compose {' '.join(args)}: {(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def scale_to(containers: int, concurrency: int | None) -> None:
    """N containers of the worker service; an explicit concurrency recreates them with it."""
    env = {"WORKER_CONCURRENCY": str(concurrency)} if concurrency else {}
    compose("up", "-d", "--wait", "--no-deps", "--scale", f"{SERVICE}={containers}", SERVICE, env=env)


def wait_for_containers(app: Celery, containers: int) -> None:
    """Until exactly ``containers`` workers consume the queue (asked, not slept for)."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        found = [w for w in workers(app, INSPECT_SECONDS) if QUEUE in w.queues]
        if len(found) == containers:
            return
        if time.monotonic() > deadline:
            names = ", ".join(w.name for w in found) or "none"
            raise TimeoutError(f"{containers} workers on {QUEUE!r} expected, {len(found)} answer: {names}")
        time.sleep(1.0)


def redis_counters(client: redis.Redis) -> tuple[int, float]:
    """Commands run and CPU seconds spent by Redis since it started (its own counters)."""
    commands = sum(int(stats["calls"]) for stats in client.info("commandstats").values())
    cpu = client.info("cpu")
    return commands, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def idle_cpu_rate(server: redis.Redis) -> float:
    """Redis's CPU seconds per second while the cluster is connected and idle, over ``IDLE_SECONDS``."""
    _, before = redis_counters(server)
    time.sleep(IDLE_SECONDS)
    _, after = redis_counters(server)
    return (after - before) / IDLE_SECONDS


def measure_cell(server: redis.Redis, redis_url: str, load: Workload, *, containers: int, concurrency: int,
                 cores: int, rounds: int, idle: float) -> Step:
    """``rounds`` rounds of one workload on ``containers`` containers, with Redis's counters around them."""
    timeout = deadline_for(load.tasks * load.task_seconds)
    commands, cpu = redis_counters(server)
    started = time.monotonic()
    spans = tuple(run_round(redis_url, load, timeout) for _ in range(rounds))
    wall = time.monotonic() - started
    commands_after, cpu_after = redis_counters(server)
    return Step(containers, concurrency, load.name, load.tasks, spans, load.ideal(containers * concurrency, cores),
                commands_after - commands, cpu_after - cpu, wall, idle)


# -- the run -------------------------------------------------------------------------------------------


def workloads(cpu_tasks: int, io_tasks: int) -> list[Workload]:
    """The two workloads (``tasks`` counts both producers' together; each sends half), the CPU size
    calibrated here so one call takes about ``CPU_TASK_SECONDS``."""
    size = spin_size(CPU_TASK_SECONDS)
    cpu_seconds = alone_seconds(partial(functions.spin, size))
    return [
        Workload("cpu", tasks.cpu_bound.name, (size,), cpu_tasks, cpu_seconds, uses_cpu=True),
        Workload("io", tasks.io_sleep.name, (IO_TASK_SECONDS,), io_tasks, IO_TASK_SECONDS, uses_cpu=False),
    ]


def measure(redis_url: str, steps: Sequence[int], loads: Sequence[Workload], concurrency: int,
            rounds: int) -> ScaleRun:
    app = client_app(redis_url)
    server = redis.Redis.from_url(redis_url)
    run = ScaleRun(concurrency, describe_machine(redis_url), [], [])
    try:
        for containers in steps:
            say(f"scale: {containers} container(s) of {SERVICE} (concurrency {concurrency})")
            scale_to(containers, concurrency)
            wait_for_containers(app, containers)
            idle = idle_cpu_rate(server)
            for load in loads:
                step = measure_cell(server, redis_url, load, containers=containers, concurrency=concurrency,
                                    cores=run.cores, rounds=rounds, idle=idle)
                run.steps.append(step)
                say(f"scale: {containers} x {load.name}: {step.tasks_per_second:.1f} tasks/s")
    except (RuntimeError, TimeoutError, OSError) as exc:
        run.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        server.close()
        app.close()
    return run


def restore() -> str | None:
    """One container with the stack's own settings again; the reason if that failed."""
    try:
        compose("up", "-d", "--wait", "--no-deps", "--scale", f"{SERVICE}=1", SERVICE)  # this environment's own
    except RuntimeError as exc:
        return str(exc)
    return None


# -- the record ----------------------------------------------------------------------------------------


def table(run: ScaleRun) -> Table:
    speedup = run.speedups()
    rows = [[s.workload, s.containers, s.tasks, f"{s.makespan:.2f}", f"{s.ideal:.2f}", f"{s.tasks_per_second:.1f}",
             f"{speedup[s.workload, s.containers]:.2f}x", f"{s.commands_per_task:.1f}",
             f"{s.redis_cpu_ms_per_task:.3f}", f"{s.redis_tasks_per_second:,.0f}"] for s in run.steps]
    return Table("scale", f"Scale: worker containers x {run.concurrency} slot(s), {PRODUCERS} producers, "
                 f"{run.cores} cores", ["workload", "containers", "tasks", "makespan s (median)", "ideal s",
                                        "tasks/s", "vs first step", "Redis cmds/task",
                                        "Redis CPU ms/task (over idle)", "tasks/s one Redis core carries"],
                 rows, chart="scale.png")


def chart(run: ScaleRun, folder: Path) -> Path:
    steps = list(dict.fromkeys(s.containers for s in run.steps))
    first = steps[0]
    speedup = run.speedups()
    series: dict[str, Sequence[float]] = {
        f"{name} (measured)": [speedup.get((name, n), 0.0) for n in steps]
        for name in dict.fromkeys(s.workload for s in run.steps)}
    series["one lane per container"] = [n / first for n in steps]
    return save_bar_chart(folder / "scale.png", title=f"Throughput over {first} container(s), {run.cores} cores",
                          ylabel="speed-up", groups=[f"{n} containers" for n in steps], series=series)


def write(run: ScaleRun, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    document = {"machine": run.machine, "concurrency": run.concurrency, "producers": PRODUCERS,
                "steps": [{**asdict(s), "makespan": s.makespan, "tasks_per_second": s.tasks_per_second,
                           "commands_per_task": s.commands_per_task, "redis_cpu_ms_per_task": s.redis_cpu_ms_per_task,
                           "redis_tasks_per_second": s.redis_tasks_per_second}
                          for s in run.steps], "problems": run.problems}
    written = [folder / "scale.json"]
    written[0].write_text(json.dumps(document, indent=2) + "\n")
    if run.steps:
        written.append(chart(run, folder))
        found = table(run)
        lines = [f"## {found.title}", "", *markdown_table(found), "", "![scale](scale.png)", ""]
        (folder / "scale.md").write_text("\n".join(lines))
        written.append(folder / "scale.md")
    return written


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m producer.bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                        help="how this host reaches the stack's Redis (default: $REDIS_URL)")
    parser.add_argument("--steps", default="1,2,4,8", help="containers per step, comma-separated (default 1,2,4,8)")
    parser.add_argument("--concurrency", type=int, default=1, help="slots per container (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per cell; the median is kept (default 3)")
    parser.add_argument("--cpu-tasks", type=int, default=80, help="CPU tasks per round, both producers")
    parser.add_argument("--io-tasks", type=int, default=240, help="IO tasks per round, both producers")
    parser.add_argument("--out", type=Path, required=True, help="folder for scale.json, scale.md, scale.png")
    args = parser.parse_args(argv)
    try:
        args.step_list = [int(part) for part in args.steps.split(",")]
    except ValueError:
        parser.error(f"--steps: {args.steps!r} is not a comma-separated list of numbers")
    if not args.redis_url:
        parser.error("no Redis: pass --redis-url or set REDIS_URL (scripts/scale.sh sets it for the stack)")
    if min(args.step_list) < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--steps, --concurrency and --rounds must be at least 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    loads = workloads(args.cpu_tasks, args.io_tasks)
    run = measure(args.redis_url, args.step_list, loads, args.concurrency, args.rounds)
    if problem := restore():
        run.problems.append(f"putting the worker back to one container: {problem}")
    for path in write(run, args.out):
        say(f"scale: wrote {path}")
    for problem in run.problems:
        say(f"scale: {problem}")
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
