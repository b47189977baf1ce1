"""What happens to a task whose worker dies under it: each task declares it, the client carries it out.

A worker killed mid-task (SIGKILL, OOM, a pulled plug) cannot report anything; the client notices it
(the heartbeat, Celery's ``WorkerLostError`` for a killed prefork child) and then follows the
task's policy. A task that had not started yet on the dead worker is simply sent again under either policy:
it never ran, so sending it again is its first run, and the claim guarantees the stranded copy never runs.
"""

from __future__ import annotations

import enum
from typing import Any


class LostPolicy(enum.Enum):
    """Declared per task as ``@app.task(lost_policy=LostPolicy.RERUN)`` (or ``"rerun"``)."""

    FAIL = "fail"
    """At most once (the default, like a local future): the future ends with ``WorkerLostError``."""
    RERUN = "rerun"
    """For idempotent tasks: run it once more on another worker; a second loss ends the future as FAIL does."""


MAX_RUNS = {LostPolicy.FAIL: 1, LostPolicy.RERUN: 2}
"""The most times a task of each policy can start: what the soak's side-effect ledger checks."""


def lost_policy_of(task: Any) -> LostPolicy:
    """The task's declared policy; anything that declares none is at most once.

    Celery keeps unknown ``@app.task(...)`` options as attributes of the task class, which is where a task's
    ``lost_policy`` lives; a value that is no policy is a ``ValueError`` naming the task and the choices.
    """
    return parse_policy(getattr(task, "lost_policy", LostPolicy.FAIL), f"task {getattr(task, 'name', task)!r}")


def parse_policy(value: Any, what: str) -> LostPolicy:
    if isinstance(value, LostPolicy):
        return value
    try:
        return LostPolicy(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in LostPolicy)
        raise ValueError(f"{what} has lost_policy {value!r}; choose one of {choices}") from None
