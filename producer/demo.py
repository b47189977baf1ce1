"""``producer demo``: a short tour of the product against whatever workers are running.

Every line it prints comes from the run. It returns False (exit status 1) if any check fails.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import wait
from typing import Any

from celery_futures import CeleryExecutor, CeleryFuture
from producer.cluster import capacity, queue_of, wait_for_workers
from producer.gates import new_gate_name, open_gate
from producer.session import Session
from producer.terminal import Terminal
from worker.errors import DemoError
from worker.tasks import demo as tasks

TIMEOUT = 60.0
WORKER_WAIT_SECONDS = 60.0
"""How long the demo waits for a worker on its queue (one still starting, after ``docker compose up -d``)."""


def run_demo(session: Session) -> bool:
    executor, terminal = session.executor(), session.terminal
    checks = [
        show_cluster(executor, terminal),
        show_results(executor, terminal),
        show_progress(executor, terminal),
        show_failure(executor, terminal),
        show_cancel(executor, terminal),
    ]
    terminal.record("ok", all(checks))
    terminal.line("demo: all checks passed" if all(checks) else "demo: SOME CHECKS FAILED")
    return all(checks)


def show_cluster(executor: CeleryExecutor, terminal: Terminal) -> bool:
    found = wait_for_workers(executor, queue_of(executor), WORKER_WAIT_SECONDS, terminal)
    terminal.table("workers", "Workers", ["worker", "pool", "concurrency", "queues"],
                   [[w.name, w.pool, w.concurrency, ",".join(w.queues)] for w in found])
    return capacity(found, queue_of(executor)) > 0


def show_results(executor: CeleryExecutor, terminal: Terminal) -> bool:
    started = time.monotonic()
    powers = list(executor.map(pow, [2] * 8, range(8), timeout=TIMEOUT))
    futures = [executor.submit(tasks.cpu_bound, 200_000) for _ in range(4)]
    futures += [executor.submit(tasks.io_sleep, 0.2) for _ in range(4)]
    wait(futures, timeout=TIMEOUT)
    rows = [[f.task_id[-8:], describe(f), f.result()] for f in futures]
    terminal.table("tasks", "CPU-bound and IO-bound tasks", ["task", "ran on", "result"], rows)
    terminal.line(f"map(pow, [2]*8, range(8)) = {powers} in {time.monotonic() - started:.2f}s")
    return powers == [2**n for n in range(8)]


def show_progress(executor: CeleryExecutor, terminal: Terminal) -> bool:
    seen: list[int] = []
    future = executor.submit(tasks.progress, 5, 0.05)
    future.add_progress_callback(lambda _f, meta: seen.append(int(meta["current"])))
    with terminal.progress("progress task", 5) as advance:
        future.add_progress_callback(lambda _f, _meta: advance())
        result = future.result(timeout=TIMEOUT)
    terminal.line(f"progress(5) reported {seen} and returned {result}")
    return seen == [1, 2, 3, 4, 5] and result == 5


def show_failure(executor: CeleryExecutor, terminal: Terminal) -> bool:
    future = executor.submit(tasks.fail_custom, "raised on purpose by the demo")
    error = future.exception(timeout=TIMEOUT)
    cause = str(getattr(error, "__cause__", "") or "").strip().strip('"').strip().splitlines()
    terminal.line(f"failure arrived as {type(error).__name__}: {error}")
    terminal.line("remote traceback, last lines:\n    " + "\n    ".join(cause[-3:]))
    return isinstance(error, DemoError) and bool(cause)


def show_cancel(executor: CeleryExecutor, terminal: Terminal) -> bool:
    slots = capacity(wait_for_workers(executor, queue_of(executor), WORKER_WAIT_SECONDS, terminal), queue_of(executor))
    gate, witness = new_gate_name(), f"demo-{uuid.uuid4().hex[:8]}"
    blockers = [executor.submit(tasks.gate, gate, TIMEOUT) for _ in range(slots)]
    wait_running(blockers)
    queued = executor.submit(tasks.record, witness)
    cancelled = queued.cancel()
    open_gate(executor.redis, gate, slots)
    wait(blockers, timeout=TIMEOUT)
    ran_after = executor.submit(tasks.record, witness).result(timeout=TIMEOUT)
    terminal.line(f"filled {slots} slot(s) with gated tasks; cancel() of a queued task -> {cancelled}; "
                  f"times it ran: {ran_after - 1} (a later run of the same task counted {ran_after})")
    return cancelled and ran_after == 1


def wait_running(futures: list[CeleryFuture], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not all(f.running() for f in futures):
        if time.monotonic() > deadline:
            raise TimeoutError("tasks did not start")
        time.sleep(0.01)


def describe(future: CeleryFuture) -> str:
    where: dict[str, Any] = future.execution or {}
    unit = f"greenlet {where['greenlet']}" if where.get("greenlet") else f"thread {where.get('thread')}"
    return f"{where.get('hostname')} ({where.get('pool')}, pid {where.get('pid')}, {unit})"
