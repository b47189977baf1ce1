"""``python -m producer lesson asyncio``: the textbook ``countdown`` coroutines, with every tick a task on the cluster.

A ``CeleryFuture`` is a ``concurrent.futures.Future``, so ``asyncio.wrap_future`` turns it into something a
coroutine can await: the event loop stays free while a worker does the waiting. The lesson runs the notes'
``countdown("A", 2)`` and ``countdown("B", 3)`` twice, with ``asyncio.sleep`` and with a remote task per
tick; then ``asyncio.gather`` over many remote futures beside the same gather of local sleeps; then what a
blocking ``future.result()`` inside a coroutine does to the loop, against ``await wrap_future(...)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from celery_futures import CeleryExecutor, CeleryFuture
from producer.lessons.common import TIMEOUT, Checks, pick_queue, require_workers, where
from producer.session import Session
from producer.terminal import Advance, Terminal
from worker.functions import sleep_tenths
from worker.tasks import demo as tasks

PREFERRED_QUEUE = "gevent"
"""Without ``--queue``: the gevent pool's queue if a worker serves it (coroutines on this side, greenlets on
the other), else the default queue, which plain ``docker compose up`` serves."""
COUNTDOWNS = (("A", 2), ("B", 3))
HEARTBEAT_SECONDS = 0.005

INTRO = """\
# asyncio: awaiting remote futures

The textbook `countdown(number, n)` prints `T-minus n`, then `await asyncio.sleep(1)`, until n reaches 0; two
of them share one event loop, so `A` (2 ticks) and `B` (3 ticks) take 3 ticks together, not 5.

Here each tick can also be a **task on the cluster**: `await asyncio.wrap_future(executor.submit(...))`.
`CeleryExecutor` returns real `concurrent.futures.Future` objects, and `wrap_future` bridges them into the
loop (the executor's listener thread completes them; the loop is woken thread-safely). So the same code
awaits local timers or remote work, `asyncio.gather` runs many remote tasks at once and returns their
results in the order it was given them, and the loop never blocks. Calling `future.result()` inside a
coroutine instead would stop the whole loop until the task is done: measured last.
"""


@dataclass
class CountdownLog:
    """What the countdowns printed, when, and (remote version) which future each tick was."""

    t0: float = field(default_factory=time.monotonic)
    lines: list[tuple[float, str, str, int]] = field(default_factory=list)
    ticks: dict[tuple[str, int], CeleryFuture] = field(default_factory=dict)

    def say(self, number: str, n: int) -> None:
        self.lines.append((time.monotonic() - self.t0, f"T-minus {n} ({number})", number, n))


Pause = Callable[[str, int], Awaitable[Any]]


async def countdown(number: str, n: int, pause: Pause, log: CountdownLog) -> None:
    """The textbook coroutine, with what it awaits per tick passed in."""
    while n > 0:
        log.say(number, n)
        await pause(number, n)
        n -= 1


async def run_countdowns(pause: Pause, log: CountdownLog) -> float:
    log.t0 = time.monotonic()
    await asyncio.gather(*(countdown(number, n, pause, log) for number, n in COUNTDOWNS))
    return time.monotonic() - log.t0


def run_asyncio(session: Session) -> bool:
    terminal, queue = session.terminal, pick_queue(session, PREFERRED_QUEUE)
    executor = session.executor(queue=queue)
    if require_workers(session, executor, [queue]) is None:
        return False
    terminal.explain(INTRO)
    checks = Checks(terminal)
    tick = 0.1 if session.quick else 1.0
    show_countdowns(executor, terminal, checks, tick)
    with terminal.progress("gather of remote tasks", count := 20 if session.quick else 100) as advance:
        show_gather(executor, terminal, checks, count, advance)
    show_blocking(executor, terminal, tick * 3)
    return checks.finish("asyncio")


def show_countdowns(executor: CeleryExecutor, terminal: Terminal, checks: Checks, tick: float) -> None:
    local, remote = CountdownLog(), CountdownLog()

    async def sleep_tick(_number: str, _n: int) -> None:
        await asyncio.sleep(tick)

    def remote_tick(number: str, n: int) -> Awaitable[Any]:
        future = remote.ticks[number, n] = executor.submit(tasks.io_sleep, tick)
        return asyncio.wrap_future(future)

    local_total = asyncio.run(run_countdowns(sleep_tick, local))
    remote_total = asyncio.run(run_countdowns(remote_tick, remote))
    rows = [[round(lt, 3), ltext, round(rt, 3), rtext, " ".join(map(str, where(remote.ticks[number, n])[1:]))]
            for (lt, ltext, _, _), (rt, rtext, number, n) in zip(local.lines, remote.lines, strict=True)]
    terminal.table("countdown", f"countdown('A', 2) and countdown('B', 3), {tick:g} s per tick",
                   ["at (s)", "local: await asyncio.sleep", "at (s)", "remote: await wrap_future(submit)",
                    "that tick ran on"], rows)
    terminal.line(f"together: {local_total:.2f} s locally, {remote_total:.2f} s with remote ticks "
                  f"(one after the other they would take {5 * tick:.2f} s)")
    terminal.record("countdown_seconds", {"local": local_total, "remote": remote_total, "tick": tick})
    for name, log in (("local", local), ("remote", remote)):
        checks.check(f"{name} countdowns each counted down in order", counted_in_order(log))
        checks.check(f"{name} countdowns overlapped", overlapped(log))


def counted_in_order(log: CountdownLog) -> bool:
    return all([n for _, _, number, n in log.lines if number == name] == list(range(start, 0, -1))
               for name, start in COUNTDOWNS)


def overlapped(log: CountdownLog) -> bool:
    """B printed its first line before A printed its last: the two ran in turns, not one after the other."""
    order = [(number, n) for _, _, number, n in log.lines]
    return order.index(("B", 3)) < order.index(("A", 1))


def show_gather(executor: CeleryExecutor, terminal: Terminal, checks: Checks, count: int, advance: Advance) -> None:
    tenths = [1 + (i % 3) / 2 for i in range(count)]  # 0.1, 0.15, 0.2 s, ...

    def submitted(n: float) -> asyncio.Future[Any]:
        future = executor.submit(sleep_tenths, n)
        future.add_done_callback(lambda _f: advance())
        return asyncio.wrap_future(future)

    async def remote() -> list[Any]:
        return list(await asyncio.gather(*(submitted(n) for n in tenths)))

    async def local() -> list[Any]:
        return list(await asyncio.gather(*(asyncio.sleep(n / 10, result=n / 10) for n in tenths)))

    rows, expected = [], [n / 10 for n in tenths]
    for name, coro in (("local asyncio.sleep", local), ("remote tasks (wrap_future)", remote)):
        started = time.monotonic()
        results = asyncio.run(asyncio.wait_for(coro(), TIMEOUT))
        rows.append([name, count, round(time.monotonic() - started, 3), round(sum(expected), 2)])
        checks.check(f"gather of {name} returned results in argument order", results == expected)
    terminal.table("gather", "asyncio.gather over many awaitables",
                   ["awaitables", "count", "makespan (s)", "one at a time would take (s)"], rows)


def show_blocking(executor: CeleryExecutor, terminal: Terminal, seconds: float) -> None:
    """A heartbeat coroutine beats every 5 ms; how long was its longest gap while the loop awaited a task?"""

    async def awaited() -> None:
        await asyncio.wrap_future(executor.submit(tasks.io_sleep, seconds))

    async def blocked() -> None:
        executor.submit(tasks.io_sleep, seconds).result(timeout=TIMEOUT)

    rows = []
    for name, body in (("await asyncio.wrap_future(f)", awaited), ("f.result() inside a coroutine", blocked)):
        worst = asyncio.run(worst_heartbeat_gap(body))
        rows.append([name, round(seconds, 3), round(worst * 1000, 1)])
    terminal.table("loop_blocking", f"A {seconds:g} s remote task, and a heartbeat coroutine beating every "
                   f"{HEARTBEAT_SECONDS * 1000:.0f} ms", ["how the coroutine waits", "task (s)",
                                                          "heartbeat's worst gap (ms)"], rows)


async def worst_heartbeat_gap(body: Callable[[], Awaitable[None]]) -> float:
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            now = time.monotonic()
            gaps.append(now - last - HEARTBEAT_SECONDS)
            last = now

    beating = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)
    try:
        await body()
        await asyncio.sleep(HEARTBEAT_SECONDS * 2)
    finally:
        beating.cancel()
    return max(gaps, default=0.0)
