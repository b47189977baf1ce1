"""Futures whose worker died: find them, then follow each task's policy (``celery_futures/protocol/policies.py``).

A dead worker cannot say which tasks it had, so the watchdog asks Redis, once per tick, about every sent
future that has not finished:

* it runs (its STARTED meta or its claim names the worker): if that worker's heartbeat key no longer holds the
  same boot id, the run is lost. Policy FAIL ends the future with ``WorkerGoneError``; policy RERUN sends it
  again once, under a new task id, and a second loss ends it as FAIL does.
* a worker holds it (took the message off the queue, not started yet): if that worker is dead, the task is
  cancelled by claim, so the stranded copy can never run, and sent again. It never ran, so this is its
  first run whatever the policy.

* nobody has it: a worker's BRPOP took the message off the queue and the worker died before kombu wrote it to
  its ``unacked`` hash, or before Celery saw it (kombu's Redis transport has no atomic fetch). Such a
  message is nowhere, so whenever a worker is seen to die (and after Redis comes back from an outage, which
  can swallow a message the same way), unclaimed futures are looked up in the queue
  and in ``unacked``; those found in neither are cancelled by claim and sent again. A message that was
  only in transit to a live worker is cancelled as well, so exactly one copy runs either way.

A task that finished just before its worker died is not lost: its stored result is applied instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from celery import states
from kombu.transport.redis import Channel

from celery_futures.client.future import CeleryFuture
from celery_futures.protocol import keys as k
from celery_futures.protocol.claims import Owner, claim_for_cancel
from celery_futures.protocol.keys import TASK_ID, alive_key, claim_key
from celery_futures.protocol.policies import MAX_RUNS, LostPolicy

logger = logging.getLogger(__name__)

MGET_CHUNK = 1000
MAX_RESENDS = 5
"""Times a never-started task is taken back from dead workers before its future gives up."""
SCAN_PAGE = 1000

@dataclass(frozen=True)
class Lost:
    """A future whose worker died: whether its task had started there, and which worker it was."""

    future: CeleryFuture
    started: bool
    owner: Owner | None
    error: BaseException | None = None
    """What the worker reported, when it could (Celery's WorkerLostError for a killed prefork child)."""


class Watchdog:
    """Finds lost futures; ``on_lost`` (the executor) decides, per policy, what becomes of each."""

    def __init__(self, redis_client: Any, broker_client: Any, *, ttl: int,
                 stored_meta: Callable[[list[CeleryFuture]], list[Any]],
                 apply_meta: Callable[[str, Any], None], on_lost: Callable[[Lost], None]) -> None:
        """``redis_client`` reaches the result backend's Redis (claims, heartbeats, results), ``broker_client``
        the broker's (queues and kombu's ``unacked`` hash); usually they are one server."""
        self._redis = redis_client
        self._broker = broker_client
        self._ttl = ttl
        self._workers: dict[bytes, bytes] = {}  # alive key -> boot id, as last seen
        self.audit_requested = False
        """Set after a reconnect or an uncertain send: look for messages that are nowhere at the next tick."""
        self._stored_meta = stored_meta
        self._apply_meta = apply_meta
        self._on_lost = on_lost

    def check(self, futures: list[CeleryFuture]) -> None:
        unfinished = [f for f in futures if not f.done()]
        if not unfinished:
            return
        audit = self._a_worker_died() or self.audit_requested
        running, held, unclaimed = self._locate(unfinished)
        beats = self._beats({owner.node for _, owner in running + held})
        dead_running = [(f, o) for f, o in running if beats.get(o.node) != o.boot.encode()]
        dead_holders = [(f, o) for f, o in held if beats.get(o.node) != o.boot.encode()]
        self._settle_dead_runs(dead_running)
        self._take_back(dead_holders)
        if audit and unclaimed:
            self._take_back([(f, None) for f in self._nowhere(unclaimed)])
        self.audit_requested = False

    def _a_worker_died(self) -> bool:
        """Whether a worker seen alive at the last tick is gone (or came back as a new boot) since."""
        keys = sorted(self._redis.scan_iter(match=f"{k.ALIVE_PREFIX}*", count=SCAN_PAGE))
        now = dict(zip(keys, self._redis.mget(keys), strict=True)) if keys else {}
        died = any(now.get(key) != boot for key, boot in self._workers.items())
        self._workers = {key: boot for key, boot in now.items() if boot is not None}
        return died

    def _nowhere(self, futures: list[CeleryFuture]) -> list[CeleryFuture]:
        """The futures whose message is neither waiting in its queue nor fetched (kombu's ``unacked``)."""
        queues = sorted({f.route.queue for f in futures if f.route is not None})
        found = set(self._ids_in_transport(queues))
        return [f for f in futures if f.task_id.encode() not in found]

    def _ids_in_transport(self, queues: list[str]) -> Iterator[bytes]:
        for queue in queues:
            for start in range(0, self._broker.llen(queue), SCAN_PAGE):
                for message in self._broker.lrange(queue, start, start + SCAN_PAGE - 1):
                    yield from TASK_ID.findall(message)
        for _, message in self._broker.hscan_iter(Channel.unacked_key, count=SCAN_PAGE):
            yield from TASK_ID.findall(message)

    def _locate(self, futures: list[CeleryFuture]) -> tuple[list[tuple[CeleryFuture, Owner]],
                                                           list[tuple[CeleryFuture, Owner]], list[CeleryFuture]]:
        """Who runs or holds each future's task (the STARTED meta where it arrived, else the claim key), and
        which futures nobody has claimed at all."""
        running, unknown = [], []
        for future in futures:
            if (owner := owner_of(future.execution)) is not None:
                running.append((future, owner))
            else:
                unknown.append(future)
        held, unclaimed = [], []
        claims = mget_in_chunks(self._redis, [claim_key(f.task_id) for f in unknown])
        for future, value in zip(unknown, claims, strict=True):
            if (owner := Owner.from_claim(value)) is not None:
                future.execution = future.execution or owner.execution()
                running.append((future, owner))
            elif (owner := Owner.from_claim(value, k.CLAIM_HELD)) is not None:
                held.append((future, owner))
            elif value is None:
                unclaimed.append(future)
        return running, held, unclaimed

    def _beats(self, nodes: set[str]) -> dict[str, bytes | None]:
        ordered = sorted(nodes)
        return dict(zip(ordered, self._redis.mget([alive_key(n) for n in ordered]), strict=True)) if ordered else {}

    def _settle_dead_runs(self, dead: list[tuple[CeleryFuture, Owner]]) -> None:
        futures = [f for f, _ in dead]
        for (future, owner), meta in zip(dead, self._stored_meta(futures), strict=True):
            if meta is not None and meta.get("status") in states.READY_STATES:
                self._apply_meta(future.task_id, meta)  # it finished; the message just has not arrived
            else:
                self._on_lost(Lost(future, started=True, owner=owner))

    def _take_back(self, dead: Sequence[tuple[CeleryFuture, Owner | None]]) -> None:
        """Cancel the stranded copies by claim; where that wins, the task never ran and can be sent again."""
        if not dead:
            return
        outcomes = claim_for_cancel(self._redis, [f.task_id for f, _ in dead], self._ttl)
        for (future, owner), outcome in zip(dead, outcomes, strict=True):
            if outcome.won:
                self._on_lost(Lost(future, started=False, owner=owner))
            elif outcome.owner is not None:  # a worker started it meanwhile: watched as running from now on
                future.execution = future.execution or outcome.owner.execution()


def mget_in_chunks(client: Any, keys: list[str]) -> list[Any]:
    """MGET of any number of keys, a thousand per command, so no single command holds Redis for long."""
    values: list[Any] = []
    for start in range(0, len(keys), MGET_CHUNK):
        values += client.mget(keys[start:start + MGET_CHUNK])
    return values


def owner_of(execution: dict[str, Any] | None) -> Owner | None:
    if not execution or not execution.get("boot"):
        return None
    return Owner(str(execution.get("pool")), str(execution.get("hostname")), str(execution["boot"]))


def may_run_again(policy: LostPolicy, lost_runs: int) -> bool:
    """Whether a task that has lost ``lost_runs`` started runs may start once more under ``policy``."""
    return lost_runs < MAX_RUNS[policy]


def lost_message(lost: Lost, task_id: str, policy: LostPolicy, lost_runs: int) -> str:
    where = f"worker {lost.owner.node} ({lost.owner.pool} pool)" if lost.owner else "its worker"
    if not lost.started:
        return (f"{where} stopped beating while holding task {task_id}, which was taken back and sent again "
                f"{MAX_RESENDS} times without starting; giving up")
    runs = "its only allowed run" if MAX_RUNS[policy] == 1 else f"run {lost_runs} of {MAX_RUNS[policy]} allowed"
    return (f"{where} stopped beating while running task {task_id} ({runs}, policy {policy.value}); "
            "the task's outcome is lost")
