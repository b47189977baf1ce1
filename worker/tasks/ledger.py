"""Tasks that write a side-effect ledger, so a soak run can prove what ran, and how often.

Each run first adds one to ``cfx:ledger:<run>`` field ``<token>`` (HINCRBY), then does what it was asked:
succeed, fail, work slowly (interruptible, and the window in which a worker gets killed), report
progress, or wait at a gate (``cfx:gate:<token>``) until a test releases it. A slow run that gets to its
end also marks ``cfx:ledger:<run>:finished``, so a run that went on after its future said it was lost would
show. A cancelled task must leave no entry; no token may count more runs than its task's policy allows
(``celery_futures/protocol/policies.py``). The two tasks differ only in that policy.

The ledger and the gates live in the Redis named by ``LEDGER_REDIS_URL`` when it is set (the harness's
own, outside the faults it injects: a Redis that loses its data must not take the evidence with it), else
beside the results.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis
from celery import Task
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from celery_futures import LostPolicy, checkpoint
from celery_futures.protocol.backend import backend_redis
from celery_futures.protocol.installation import result_ttl_of
from celery_futures.protocol.keys import STATE_PROGRESS
from celery_futures.worker.claiming import OUTAGE_RETRY
from worker import constants as c
from worker.app import app
from worker.errors import DemoError

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

ACTIONS = ("ok", "fail", "slow", "progress", "gate")


def ledger_key(run: str) -> str:
    return f"{c.LEDGER_PREFIX}{run}"


def runs(client: Redis, run: str) -> dict[str, int]:
    """The side-effect ledger of ``run``: token -> how many times a task with that token started."""
    return {bytes_to_str(token): int(count) for token, count in client.hgetall(ledger_key(run)).items()}


def finished_key(run: str) -> str:
    """The hash of slow runs that got to their end (token -> how many did)."""
    return f"{ledger_key(run)}:finished"


@functools.cache
def ledger_redis() -> Redis:
    """Where the ledger and the gates are kept: ``LEDGER_REDIS_URL``, or the results' Redis."""
    url = os.environ.get(c.ENV_LEDGER_REDIS_URL)
    return redis.Redis.from_url(url) if url else backend_redis(app)


COUNT_ONCE = """
if redis.call('HSETNX', KEYS[2], ARGV[2], 1) == 1 then redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])
"""
"""Count a run once per attempt id, so a write retried after a cut reply cannot count the same run twice."""


def write_entry(run: str, token: str) -> int:
    """Count one run of ``token``; the ledger expires with the results it vouches for.

    Retried across a Redis restart like the claim; the attempt id makes the retry idempotent.
    """
    script = count_once_script(ledger_redis())
    keys = [ledger_key(run), f"{ledger_key(run)}:attempts"]
    args: list[str | int] = [token, uuid.uuid4().hex, result_ttl_of(app)]
    return int(OUTAGE_RETRY.call_with_retry(lambda: script(keys=keys, args=args), lambda exc: None))


@functools.cache
def count_once_script(client: Redis) -> Script:
    """The script bound to ``client``: EVALSHA, loaded once per process (as the claim scripts are)."""
    return client.register_script(COUNT_ONCE)


def wait_at_gate(token: str, seconds: float) -> None:
    """BLPOP ``cfx:gate:<token>`` in one-second rounds until released, riding out a Redis restart (a task
    whose own IO gives up on the first dropped connection would fail the soak for the wrong reason)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ledger_redis().blpop([f"{c.GATE_PREFIX}{token}"], timeout=1) is not None:
                return
        except (RedisConnectionError, RedisTimeoutError):
            time.sleep(0.2)
    raise TimeoutError(f"gate {token!r} was not released within {seconds}s")


def perform(task: Task, run: str, token: str, action: str, seconds: float) -> str:  # type: ignore[type-arg]
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    write_entry(run, token)
    if action == "fail":
        raise DemoError(f"{token} failed on purpose")
    if action == "slow":
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            checkpoint()
            time.sleep(min(0.05, left))
        write_entry(f"{run}:finished", token)
    if action == "gate":
        wait_at_gate(token, seconds)
    if action == "progress":
        steps = 4
        for current in range(1, steps + 1):
            time.sleep(seconds / steps)
            task.update_state(state=STATE_PROGRESS, meta={"current": current, "total": steps})
    return token


@app.task(bind=True, lost_policy=LostPolicy.FAIL)
def ledger_once(self: Task, run: str, token: str, action: str = "ok", seconds: float = 0.0) -> Any:  # type: ignore[type-arg]
    """At most once: if its worker dies, the future fails with ``WorkerLostError``."""
    return perform(self, run, token, action, seconds)


@app.task(bind=True, lost_policy=LostPolicy.RERUN)
def ledger_rerun(self: Task, run: str, token: str, action: str = "ok", seconds: float = 0.0) -> Any:  # type: ignore[type-arg]
    """Idempotent by declaration: if its worker dies, it runs once more elsewhere."""
    return perform(self, run, token, action, seconds)
