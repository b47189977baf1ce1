"""Submit a plan through the executor the way a busy producer would, and wait for it with a deadline.

At most ``window`` futures are outstanding at once, so submissions go on for the whole run (through the
kill and the Redis restart) and cancel targets find a queue to wait in. Each batch puts its cancel targets
last and cancels them as soon as they are submitted. Interrupt targets are interrupted as soon as their
future says running; a request Redis cannot take (during the restart) is tried again at the next scan.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from celery_futures import CeleryExecutor, CeleryFuture
from producer.soak.flight import Flight
from producer.soak.plan import Kind, TaskSpec, batches

SCAN_SECONDS = 0.05
"""How often the driver looks for interrupt targets that have started (and redraws its progress)."""


def no_progress(steps: int = 1) -> None:
    """The default progress sink: draws nothing."""


@dataclass
class Driver:
    executor: CeleryExecutor
    flight: Flight
    run: str
    window: int
    batch_size: int
    deadline: float
    stall_seconds: float = 60.0
    """Stop waiting once no future has ended for this long while some are outstanding: those are stuck."""
    advance: Callable[[int], None] = no_progress
    hold_at: int | None = None
    """Submit no more once this many are submitted, until ``released`` is set (the fault thread's cue)."""
    released: threading.Event = field(default_factory=threading.Event)
    cancels: Counter[str] = field(default_factory=Counter)
    """``won`` / ``lost``: what each cancel() returned."""
    interrupts: Counter[str] = field(default_factory=Counter)
    """How each interrupt() said the task will stop, ``not running`` when it had already ended, and
    ``retried after <error>`` for each request that failed."""
    stopped: str | None = None
    """Why the run stopped early: the deadline, or a stall."""
    _targets: dict[int, CeleryFuture] = field(default_factory=dict)
    _shown: int = 0
    _last_end: float = field(default_factory=time.monotonic)

    def run_plan(self, plan: list[TaskSpec]) -> bool:
        """Submit every spec, then wait for every future; False if the deadline or a stall came first."""
        for batch in batches(plan, self.batch_size):
            if not (self._until(self._has_room) and self._until(self._not_held)):
                return False
            self._submit(batch)
        return self._until(lambda: not self.flight.outstanding_futures())

    def _has_room(self) -> bool:
        return len(self.flight.outstanding_futures()) < self.window

    def _not_held(self) -> bool:
        return self.hold_at is None or self.flight.submitted < self.hold_at or self.released.is_set()

    def _until(self, ready: Callable[[], bool]) -> bool:
        """Interrupt what has started and show progress until ``ready()``; False at the deadline or a stall."""
        while True:
            self._interrupt_started()
            self._show_progress()
            if ready():
                return True
            self.stopped = self._stop_reason()
            if self.stopped:
                return False
            self.flight.wait(SCAN_SECONDS)

    def _stop_reason(self) -> str | None:
        now = time.monotonic()
        if now > self.deadline:
            return "the deadline came first"
        if now - self._last_end > self.stall_seconds and self.flight.outstanding_futures():
            return f"no future ended for {self.stall_seconds:.0f}s; stopped waiting for the rest"
        return None

    def _submit(self, batch: list[TaskSpec]) -> None:
        cancel_now = []
        for spec in batch:
            future = self.executor.submit(spec.task_name, *spec.args(self.run))
            self.flight.add(spec, future)
            if spec.kind is Kind.CANCEL:
                cancel_now.append(future)
            elif spec.kind is Kind.INTERRUPT:
                self._targets[spec.index] = future
        for future in cancel_now:
            self.cancels["won" if future.cancel() else "lost"] += 1

    def _interrupt_started(self) -> None:
        for index, future in list(self._targets.items()):
            if future.done():
                del self._targets[index]
            elif future.running():
                self._interrupt(index, future)

    def _interrupt(self, index: int, future: CeleryFuture) -> None:
        try:
            method = future.interrupt()
        except Exception as exc:  # Redis away (the restart): ask again at the next scan
            self.interrupts[f"retried after {type(exc).__name__}"] += 1
            return
        self.interrupts[method.name if method is not None else "not running"] += 1
        del self._targets[index]

    def _show_progress(self) -> None:
        done = self.flight.done_count()
        if done > self._shown:
            self._last_end = time.monotonic()
            self.advance(done - self._shown)
            self._shown = done
