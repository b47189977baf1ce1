"""The start/cancel claim, and the cooperative interrupt flag: the scripts both sides run.

Celery's ``revoke`` cannot make ``Future.cancel()`` exact: it is a broadcast kept in the memory of the
workers alive at that moment, a task a threads or gevent worker has already reserved still runs, and a
late SUCCESS overwrites REVOKED. So the race between "a worker starts the task" and "a producer cancels
it" is decided atomically on one key, and the loser backs off::

    worker, on receipt:      SET cfx:claim:<id> "held:<pool>:<boot>:<node>" NX    (who holds the message)
    worker, before running:  a Lua script: GET cfx:claim:<id>; if held, SET it to
                             "started:<pool>:<boot>:<node>" and store + PUBLISH the STARTED record
                                                                     -> it was held: run it
                                                                     -> "cancelled": skip it
                                                                     -> empty: refuse it (below)
    producer, in cancel():   a Lua script: unless cfx:claim:<id> is "started:..." (or "reclaimed:..."),
                             SET it "cancelled"                      -> cancelled, never runs
                                                                     -> "started:...": it runs there;
                                                                        cancel() is False

The held mark is what lets a producer recover a task from a worker that died after taking its message
off the queue but before starting it: nothing else records where such a message went. It is also the
evidence that nobody cancelled the task: a claim is only ever written, never deleted (it expires with the
results), so an empty claim at start means it was lost, with everything else, by a Redis that lost its
data (restarted without persistence, flushed) after the worker took the message, or by a failover to a
replica that had not received it yet. Whether a client cancelled it meanwhile can then not be known, so the
worker refuses to run it, closes the claim (``cancelled``: no other copy of the message may run instead) and
stores a ``RedisDataLostError`` for it: a cancel that said True is never contradicted.

Redis losing its data also takes the claims of tasks that are running. A worker that notices it (its
heartbeat key is gone) writes ``reclaimed:<pool>:<boot>:<node>`` for every task its pool had accepted, so a
cancel loses to those as it would to ``started``; one that had not reached its start claim yet finds
``reclaimed`` there and refuses to run as above (it cannot tell whether it was cancelled before). A client
refuses to decide a cancel while its own marker ``cfx:client:<executor>`` is missing (the same loss took
it), which covers the moment before the workers have reclaimed what they run.

A running task is a separate matter: ``cfx:interrupt:<id>`` is a flag the producer sets and a task polls
(``checkpoint()``), the only way to stop a task on pools that cannot interrupt one.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from celery_futures.protocol import keys as k
from celery_futures.protocol.keys import claim_key, interrupt_key

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script


class StartClaim(enum.Enum):
    WON = "won"
    """Nobody had claimed the task: this worker runs it."""
    CANCELLED = "cancelled"
    """A producer cancelled it first: it must never run."""
    ALREADY_STARTED = "already-started"
    """It started before (a redelivered message): at most once, so it must not run again."""
    MISSING = "missing"
    """Its held mark is gone (Redis lost its data after this worker took it), or only a reclaim is there:
    whether it was cancelled meanwhile cannot be known, so it must not run."""


@dataclass(frozen=True)
class Owner:
    """The worker that won a task's claim, as its claim value tells."""

    pool: str
    node: str
    boot: str
    """The worker boot's heartbeat id, so a producer that lost the race can watch that worker at once."""

    def claim_value(self) -> str:
        return f"{k.CLAIM_STARTED}:{self.pool}:{self.boot}:{self.node}"

    def held_value(self) -> str:
        return f"{k.CLAIM_HELD}:{self.pool}:{self.boot}:{self.node}"

    def reclaimed_value(self) -> str:
        return f"{k.CLAIM_RECLAIMED}:{self.pool}:{self.boot}:{self.node}"

    def execution(self) -> dict[str, str]:
        """What a producer knows of where the task runs before its STARTED message arrives."""
        return {"hostname": self.node, "pool": self.pool, "boot": self.boot}

    @classmethod
    def from_claim(cls, value: bytes | str | None, kind: str = k.CLAIM_STARTED) -> Owner | None:
        """The worker named by a ``kind`` claim value ("started" by default, or "held"); None otherwise."""
        text = value.decode() if isinstance(value, bytes) else value
        if not text or not text.startswith(f"{kind}:") or text.count(":") < 3:
            return None
        _, pool, boot, node = text.split(":", 3)
        return cls(pool, node, boot)

    @classmethod
    def running(cls, value: bytes | str | None) -> Owner | None:
        """The worker a claim says runs the task ("started", or "reclaimed" after a data loss), or None."""
        return cls.from_claim(value) or cls.from_claim(value, k.CLAIM_RECLAIMED)


CLAIM_AND_ANNOUNCE = """
local previous = redis.call('GET', KEYS[1])
if not previous then
  redis.call('SET', KEYS[1], 'cancelled', 'EX', ARGV[2])
  return 'missing'
end
if string.sub(previous, 1, 5) ~= 'held:' then return previous end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return false
"""
"""Claim the held task and, only if that won, store and publish its STARTED state: one round trip, atomic. An
empty claim is refused and closed (``cancelled``), so no other copy of the message can run either: a failover
can bring back a message whose pop was lost together with its held mark."""

MISSING: Final = "missing"
"""What the start script answers for an empty claim (no claim value can be this word)."""
RESET: Final = "reset"
"""What the cancel script answers when the client's marker is gone."""

CANCEL = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 'reset' end
local previous = redis.call('GET', KEYS[1])
if previous and (string.sub(previous, 1, 8) == 'started:' or string.sub(previous, 1, 10) == 'reclaimed:') then
  return previous
end
redis.call('SET', KEYS[1], 'cancelled', 'EX', ARGV[1])
return previous
"""
"""Cancel unless a worker started (or reclaimed) the task, and only while the client's marker says Redis
still has what it had; return what was there (nil, held, cancelled, started, reclaimed) or ``reset``."""


@functools.cache
def claim_and_announce_script(client: Redis) -> Script:
    """The script bound to ``client`` (one per process): EVALSHA, loaded once."""
    return client.register_script(CLAIM_AND_ANNOUNCE)


@functools.cache
def cancel_script(client: Redis) -> Script:
    return client.register_script(CANCEL)


def hold_on_receipt(client: Redis, task_id: str, owner: Owner, ttl: int) -> None:
    """Mark that ``owner`` took this task's message off the queue; a claim already there stays."""
    client.set(claim_key(task_id), owner.held_value(), nx=True, ex=ttl)


def reclaim(client: Redis, task_ids: list[str], owner: Owner, ttl: int) -> int:
    """After Redis lost its data: say again that ``owner`` has these tasks (only where no claim is back yet);
    returns how many claims were written."""
    with client.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.set(claim_key(task_id), owner.reclaimed_value(), nx=True, ex=ttl)
        return sum(1 for written in pipe.execute() if written)


@dataclass(frozen=True)
class StartedState:
    """The backend's STARTED record for a task: its key (also the pub/sub channel) and encoded meta."""

    key: str
    payload: str | bytes
    ttl: int


def claim_for_start(client: Redis, task_id: str, owner: Owner, ttl: int, started: StartedState, *,
                    retry: bool = False) -> StartClaim:
    """Try to claim ``task_id`` for running it and, if won, announce STARTED in the same script.

    Celery would store STARTED with a GET and then a SET+PUBLISH pipeline after our claim: three round trips
    where one does, on the path every task takes. ``retry``: an earlier attempt lost its reply (a Redis
    restart can cut it after the script ran), so finding this worker's own claim means that attempt won.
    """
    previous = claim_and_announce_script(client)(keys=[claim_key(task_id), started.key],
                      args=[owner.claim_value(), ttl, started.payload, started.ttl])
    if previous is None:
        return StartClaim.WON
    text = previous.decode() if isinstance(previous, bytes) else str(previous)
    if retry and text == owner.claim_value():
        return StartClaim.WON
    if text == MISSING or text == owner.reclaimed_value():
        return StartClaim.MISSING
    return StartClaim.CANCELLED if text == k.CLAIM_CANCELLED else StartClaim.ALREADY_STARTED


@dataclass(frozen=True)
class CancelClaim:
    """The outcome of a cancel claim: won, lost to the worker named by ``owner``, or not decided because
    Redis lost its data (``reset``: the client's marker was gone)."""

    won: bool
    owner: Owner | None = None
    reset: bool = False
    unconfirmed: bool = False
    """The cancel was written, but no replica confirmed it (``celery_futures/protocol/replication.py``): a
    failover could still lose it, so it is not a cancel yet (``won`` is False); asking again decides it."""


def claim_for_cancel(client: Redis, task_ids: list[str], ttl: int, marker: str) -> list[CancelClaim]:
    """Try to claim each task for cancelling it, in one pipeline of the cancel script; ``marker`` is the
    client's own marker key (``keys.client_key``)."""
    script = cancel_script(client)
    with client.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            script(keys=[claim_key(task_id), marker], args=[ttl], client=pipe)
        previous = pipe.execute()
    return [cancel_outcome(value) for value in previous]


def cancel_outcome(previous: bytes | str | None) -> CancelClaim:
    """Nothing there, held, or already cancelled: the cancel holds. A worker started (or reclaimed) it: it
    lost. The client's marker gone: nothing was decided."""
    if previous in (RESET, RESET.encode()):
        return CancelClaim(won=False, reset=True)
    owner = Owner.running(previous)
    return CancelClaim(won=owner is None, owner=owner)


def request_interrupt(client: Redis, task_id: str, ttl: int) -> None:
    """Raise the cooperative flag a running task checks."""
    client.set(interrupt_key(task_id), "1", ex=ttl)


def interrupt_requested(client: Redis, task_id: str) -> bool:
    return bool(client.exists(interrupt_key(task_id)))
