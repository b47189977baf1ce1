"""What a soak submits: a seeded mix of ledger tasks, so the same seed replays the same run.

Every task is ``ledger_once`` (at most once) or ``ledger_rerun`` (at most twice), half and half, and carries
a unique token; its kind says what the task does and what the soak does to its future.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from celery_futures.protocol.policies import LostPolicy
from worker.tasks.ledger import ledger_once, ledger_rerun


class Kind(enum.Enum):
    OK = "ok"
    """Returns its token at once."""
    FAIL = "fail"
    """Raises ``DemoError``."""
    SLOW = "slow"
    """Works ``slow_seconds``, then returns its token: the tasks a killed worker is most likely running."""
    PROGRESS = "progress"
    """Reports four PROGRESS steps over ``slow_seconds / 2``, then returns its token."""
    CANCEL = "cancel"
    """Submitted behind the rest of its batch and cancelled at once, while still queued."""
    INTERRUPT = "interrupt"
    """Works ``INTERRUPT_FACTOR * slow_seconds``; the soak interrupts it as soon as it runs."""


MIX: dict[Kind, float] = {Kind.OK: 0.55, Kind.FAIL: 0.15, Kind.CANCEL: 0.10, Kind.PROGRESS: 0.10,
                          Kind.INTERRUPT: 0.05, Kind.SLOW: 0.05}
"""Share of each kind in a run."""
INTERRUPT_FACTOR = 10
"""Interrupt targets work this many times ``slow_seconds``: long enough to be caught running."""

ACTION = {Kind.OK: "ok", Kind.FAIL: "fail", Kind.SLOW: "slow", Kind.PROGRESS: "progress", Kind.CANCEL: "ok",
          Kind.INTERRUPT: "slow"}
"""The ledger task's action per kind (a cancel that loses its race runs as a plain success)."""
TASK_NAMES = {LostPolicy.FAIL: ledger_once.name, LostPolicy.RERUN: ledger_rerun.name}


@dataclass(frozen=True, slots=True)
class TaskSpec:
    index: int
    token: str
    kind: Kind
    policy: LostPolicy
    seconds: float

    @property
    def task_name(self) -> str:
        return TASK_NAMES[self.policy]

    def args(self, run: str) -> tuple[str, str, str, float]:
        """``(run, token, action, seconds)``, as the ledger tasks take them."""
        return run, self.token, ACTION[self.kind], self.seconds


def seconds_for(kind: Kind, slow_seconds: float) -> float:
    if kind is Kind.SLOW:
        return slow_seconds
    if kind is Kind.PROGRESS:
        return slow_seconds / 2
    if kind is Kind.INTERRUPT:
        return slow_seconds * INTERRUPT_FACTOR
    return 0.0


def make_plan(tasks: int, seed: int, slow_seconds: float) -> list[TaskSpec]:
    """``tasks`` specs drawn from :data:`MIX` with ``random.Random(seed)``; the same arguments, the same plan."""
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=tasks)
    policies = [rng.choice((LostPolicy.FAIL, LostPolicy.RERUN)) for _ in range(tasks)]
    return [TaskSpec(index, f"t{index:06d}", kind, policy, seconds_for(kind, slow_seconds))
            for index, (kind, policy) in enumerate(zip(kinds, policies, strict=True))]


def batches(plan: list[TaskSpec], size: int) -> list[list[TaskSpec]]:
    """The plan in submission batches, each with its cancel targets last, behind the work they wait for."""
    chunks = [plan[start:start + size] for start in range(0, len(plan), size)]
    return [sorted(chunk, key=lambda spec: spec.kind is Kind.CANCEL) for chunk in chunks]
