"""``python -m producer lesson thread-safety``: ``counter += 1`` from many tasks at once, and what gets lost.

Every task adds 1 to a counter many times, as a read, a yield (``time.sleep(0)``: let another thread or
greenlet run, as the GIL's switch interval or any IO would) and a write. The counter lives in the worker's
own memory (``worker/lesson_tasks.py``), except in the last variant, where it is a Redis key and the
increment is one atomic ``INCR``. Lost updates are counted: what the tasks added minus what the counter holds.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery_futures import CeleryExecutor
from producer.gates import record_count
from producer.lessons.common import BARRIER_SECONDS, TIMEOUT, Checks, advance_on_done, done_all, open_queues
from producer.session import Session
from producer.terminal import Terminal
from worker.tasks import lessons as lesson_tasks

QUEUES = ("threads", "prefork", "gevent")

INTRO = """\
# Thread safety: a shared counter

Many tasks add 1 to one counter, each increment a **read, a yield, a write** (the yield stands for the
GIL's switch interval, or any IO between the read and the write). Two tasks that both read 41 both write 42:
one update is lost.

* **threads** share the process's memory: without a lock updates are lost; with `threading.Lock` around
  the read-modify-write (the textbook `with lock:`) none are.
* **prefork** children are separate processes: nothing is shared, nothing is lost, and no process holds the
  total. Each counter only saw its own tasks.
* **gevent** has one thread (textbooks say: then "no thread-safety problem") — true only while nothing yields
  between the read and the write. A `gevent.sleep(0)` there loses updates just as threads do.
* **Redis `INCR`** is one atomic command on shared state: correct from any pool, any process, any machine.
"""

COLUMNS = ["pool: variant", "tasks x increments", "counted", "lost updates", "per process"]


@dataclass(frozen=True)
class Variant:
    name: str
    queue: str
    locked: bool = False
    pause: bool = True
    redis: bool = False


VARIANTS = (
    Variant("no lock", "threads"),
    Variant("threading.Lock", "threads", locked=True),
    Variant("no lock, own memory per process", "prefork"),
    Variant("no lock, no yield inside", "gevent", pause=False),
    Variant("no lock, gevent.sleep(0) inside", "gevent"),
    Variant("Redis INCR", "threads", redis=True),
)


@dataclass(frozen=True)
class Counted:
    variant: Variant
    tasks: int
    times: int
    per_process: dict[int, int]
    """Each worker process's own counter (memory variants)."""
    shared: int | None = None
    """The one Redis counter every process incremented (the INCR variant)."""

    @property
    def expected(self) -> int:
        return self.tasks * self.times

    @property
    def counted(self) -> int:
        return self.shared if self.shared is not None else sum(self.per_process.values())

    @property
    def lost(self) -> int:
        return self.expected - self.counted

    def row(self) -> list[Any]:
        where = ", ".join(f"pid {pid}: {value}" for pid, value in sorted(self.per_process.items()))
        return [f"{self.variant.queue}: {self.variant.name}", f"{self.tasks} x {self.times} = {self.expected}",
                self.counted, self.lost, where or f"one Redis key: {self.shared}"]


def run_thread_safety(session: Session) -> bool:
    terminal = session.terminal
    opened = open_queues(session, QUEUES)
    if opened is None:
        return False
    executors, slots = opened.executors, opened.slots
    terminal.explain(INTRO)
    checks = Checks(terminal)
    tasks_count, times = (8, 200) if session.quick else (16, 2000)
    results = [count(executors[v.queue], v, tasks_count=tasks_count, times=times, slots=slots[v.queue],
                     terminal=terminal) for v in VARIANTS]
    terminal.table("counters", "A shared counter, incremented by many tasks at once", COLUMNS,
                   [r.row() for r in results])
    by_name = {r.variant.name: r for r in results}
    checks.check("threads with threading.Lock lost no update", by_name["threading.Lock"].lost == 0)
    checks.check("prefork lost no update inside a process", by_name["no lock, own memory per process"].lost == 0)
    checks.check("gevent with no yield between read and write lost no update",
                 by_name["no lock, no yield inside"].lost == 0)
    checks.check("Redis INCR lost no update", by_name["Redis INCR"].lost == 0)
    summarize(by_name, terminal)
    return checks.finish("thread-safety")


def meeting_size(tasks_count: int, slots: int) -> int:
    """How many tasks wait for each other before counting: the most that run at once and divide the total.

    Groups of that size start counting together, so tasks overlap however late each one started; a prefork
    child runs one task at a time, so there tasks never meet (size 1).
    """
    return max(size for size in range(1, min(tasks_count, slots) + 1) if tasks_count % size == 0)


def count(executor: CeleryExecutor, variant: Variant, *, tasks_count: int, times: int, slots: int,
          terminal: Terminal) -> Counted:
    """Run the variant's tasks at once, then read the counter(s) they shared."""
    parties = 1 if variant.queue == "prefork" else meeting_size(tasks_count, slots)
    name = f"lesson-counter-{uuid.uuid4().hex[:12]}"
    submit: Callable[[], Any] = (
        functools.partial(executor.submit, lesson_tasks.count_up_redis, name, times) if variant.redis
        else functools.partial(executor.submit, lesson_tasks.count_up, name, times, locked=variant.locked,
                               pause=variant.pause, barrier=name if parties > 1 else "", parties=parties,
                               timeout=BARRIER_SECONDS)
    )
    with terminal.progress(f"{variant.name} on {variant.queue}", tasks_count) as advance:
        futures = [submit() for _ in range(tasks_count)]
        advance_on_done(futures, advance)
        done_all(futures)
    if variant.redis:
        return Counted(variant, tasks_count, times, {}, shared=record_count(executor.redis, name))
    reports = [f.result() for f in futures]
    if variant.queue == "prefork" or len({r["pid"] for r in reports}) > 1:
        return Counted(variant, tasks_count, times, last_value_per_process(reports))
    read = executor.submit(lesson_tasks.count_read, name).result(timeout=TIMEOUT)
    return Counted(variant, tasks_count, times, {int(read["pid"]): int(read["value"])})


def last_value_per_process(reports: list[dict[str, Any]]) -> dict[int, int]:
    """A prefork child runs one task at a time, so its last task saw its counter's final value.

    (Also used when several worker processes served a threads or gevent queue: then each process's
    largest value stands for its counter.)
    """
    final: dict[int, int] = {}
    for report in reports:
        pid = int(report["pid"])
        final[pid] = max(final.get(pid, 0), int(report["value"]))
    return final


def summarize(by_name: dict[str, Counted], terminal: Terminal) -> None:
    unlocked, switching = by_name["no lock"], by_name["no lock, gevent.sleep(0) inside"]
    prefork = by_name["no lock, own memory per process"]
    terminal.line(f"Without a lock the threads lost {unlocked.lost} of {unlocked.expected} updates; with "
                  f"threading.Lock, {by_name['threading.Lock'].lost}. gevent lost "
                  f"{by_name['no lock, no yield inside'].lost} without a yield inside and {switching.lost} with "
                  f"one. On prefork {len(prefork.per_process)} process(es) each counted only their own tasks "
                  f"(largest: {max(prefork.per_process.values(), default=0)} of {prefork.expected}); Redis INCR "
                  f"counted {by_name['Redis INCR'].counted} of {by_name['Redis INCR'].expected}.")
