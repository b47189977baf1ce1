"""The soak's futures by plan index, and what happened to each: shared by the driver, the fault injector
and the executor's listener thread (done and progress callbacks), under one condition variable.

At the end the futures are turned into compact :class:`Record` s (no reference to anything the producer
allocated), so the futures themselves can be dropped and the producer's memory measured without them.
"""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from celery_futures import CeleryFuture
from celery_futures.protocol.policies import LostPolicy
from producer.soak.plan import Kind, TaskSpec

RESULT, CANCELLED, PENDING, NOT_SUBMITTED = "result", "cancelled", "pending", "not submitted"
"""Outcomes that are not an exception type's name."""
ON_PURPOSE = frozenset({"DemoError", "TaskInterruptedError"})
"""Errors the soak asks for (a failing task, an interrupt): their messages say nothing new."""
REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Record:
    """What one planned task came to, judged later against the ledger."""

    index: int
    token: str
    kind: Kind
    policy: LostPolicy
    outcome: str
    """``result``, ``cancelled``, ``pending``, ``not submitted``, or the exception type's name."""
    returned_token: bool | None
    """For a result: whether it is the task's own token."""
    progress_reports: int
    affected: bool
    """Running on, or received by, the worker the soak killed."""
    reason: str | None = None
    """The message of an error the task itself did not raise on purpose (a fault's), to name in a report."""


def outcome_name(error: BaseException) -> str:
    """The exception's type name; redis-py's own get a ``redis.`` prefix (its ConnectionError is not the builtin)."""
    name = type(error).__name__
    return f"redis.{name}" if type(error).__module__.startswith("redis.") else name


class Flight:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.futures: dict[int, CeleryFuture] = {}
        self.outstanding: set[int] = set()
        self.done_at: dict[int, float] = {}
        self.progress: dict[int, int] = {}
        self.submitted = 0

    def add(self, spec: TaskSpec, future: CeleryFuture) -> None:
        """Track a submitted future; its callbacks fire on the listener thread (or here, if already done)."""
        with self.cond:
            self.futures[spec.index] = future
            self.outstanding.add(spec.index)
            self.submitted += 1
        if spec.kind is Kind.PROGRESS:
            future.add_progress_callback(functools.partial(self._progressed, spec.index))
        future.add_done_callback(functools.partial(self._finished, spec.index))

    def _finished(self, index: int, _: Future[Any]) -> None:
        with self.cond:
            self.outstanding.discard(index)
            self.done_at[index] = time.monotonic()
            self.cond.notify_all()

    def _progressed(self, index: int, _future: CeleryFuture, _meta: dict[str, Any]) -> None:
        with self.cond:
            self.progress[index] = self.progress.get(index, 0) + 1

    def done_count(self) -> int:
        with self.cond:
            return len(self.done_at)

    def outstanding_futures(self) -> dict[int, CeleryFuture]:
        with self.cond:
            return {index: self.futures[index] for index in self.outstanding}

    def running_on(self, hostname: str) -> set[int]:
        """Indices of futures running on the worker named ``hostname`` (their STARTED said so)."""
        return {index for index, future in self.outstanding_futures().items()
                if future.running() and (future.execution or {}).get("hostname") == hostname}

    def wait(self, timeout: float) -> None:
        """Sleep until a future finishes or ``timeout`` passes."""
        with self.cond:
            self.cond.wait(timeout)

    def records(self, plan: list[TaskSpec], affected: set[int]) -> list[Record]:
        return [self._record(spec, spec.index in affected) for spec in plan]

    def _record(self, spec: TaskSpec, affected: bool) -> Record:
        future = self.futures.get(spec.index)
        returned: bool | None = None
        reason: str | None = None
        if future is None:
            outcome = NOT_SUBMITTED
        elif not future.done():
            outcome = PENDING
        elif future.cancelled():
            outcome = CANCELLED
        elif (error := future.exception()) is not None:
            outcome = outcome_name(error)
            reason = None if outcome in ON_PURPOSE else str(error)[:REASON_CHARS]
        else:
            outcome, returned = RESULT, future.result() == spec.token
        return Record(spec.index, spec.token, spec.kind, spec.policy, outcome, returned,
                      self.progress.get(spec.index, 0), affected, reason)

    def stuck(self, plan: list[TaskSpec]) -> list[dict[str, Any]]:
        """Every submitted future that has not ended: enough to find it in Redis and in the worker logs."""
        return [{"index": spec.index, "token": spec.token, "kind": spec.kind.value, "task": spec.task_name,
                 "task_id": future.task_id, "state": "RUNNING" if future.running() else "PENDING",
                 "sent": future.sent, "execution": future.execution, "progress": future.progress}
                for spec in plan if (future := self.futures.get(spec.index)) is not None and not future.done()]

    def drop(self) -> None:
        """Forget the futures (the records keep what the checks need)."""
        with self.cond:
            self.futures.clear()
            self.outstanding.clear()
