"""Futures whose worker died, or whose message Redis lost: find them, then end each one truthfully.

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
  can swallow a message the same way), unclaimed futures are looked up in the queue and in ``unacked``;
  those found in neither are cancelled by claim and sent again. A message that was only in transit to a
  live worker is cancelled as well, so exactly one copy runs either way.

A task that finished just before its worker died is not lost: its stored result is applied instead.

Behind Sentinel a cancel by claim counts only once a replica confirmed it (``celery_futures/protocol/
replication.py``). One that is not confirmed yet takes nothing back and is asked again at the next tick; and
a future whose claim says ``cancelled`` while it has not ended (a cancel nobody confirmed, or whose reply was
lost) is looked for like an unclaimed one, so it cannot wait for ever on a message a failover took.

Nothing is judged while the evidence may be incomplete (``celery_futures/client/evidence.py``). After a
reconnect, and after Redis lost its data (the client's marker is gone), the watchdog waits a grace period of
one heartbeat lifetime and a beat, in which every live worker has beaten again and reclaimed what it runs;
then it applies every stored state it finds. After a data loss it also ends the futures whose message went
with the data (unclaimed and nowhere, sent before the loss was noticed) with ``RedisDataLostError``: they
did not run, and they are not sent again (whether they were meant to run can no longer be told apart from
a cancel that went with the data). A lost worker is only ever declared from one consistent read of its
heartbeat, the task's stored state and the marker, taken right before the future is ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from celery import states

from celery_futures.client.evidence import Evidence
from celery_futures.client.future import CeleryFuture
from celery_futures.protocol import keys as k
from celery_futures.protocol.claims import Owner
from celery_futures.protocol.errors import RedisDataLostError
from celery_futures.protocol.keys import ALIVE_TTL_SECONDS, BEAT_SECONDS
from celery_futures.protocol.policies import MAX_RUNS, LostPolicy

logger = logging.getLogger(__name__)

MAX_RESENDS = 5
"""Times a never-started task is taken back from dead workers before its future gives up."""
GRACE_SECONDS = ALIVE_TTL_SECONDS + BEAT_SECONDS
"""After a reconnect or a data loss: long enough for every live worker to beat again (and reclaim)."""
CANCELLED = k.CLAIM_CANCELLED.encode()


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

    def __init__(self, evidence: Evidence, *, apply_meta: Callable[[str, Any], None],
                 on_lost: Callable[[Lost], None]) -> None:
        self._evidence = evidence
        self._workers: dict[bytes, bytes] = {}  # alive key -> boot id, as last seen
        self.audit_requested = False
        """Set after a reconnect or an uncertain send: look for messages that are nowhere at the next tick."""
        self._apply_meta = apply_meta
        self._on_lost = on_lost
        self._grace_until = 0.0
        self._grace_pending = False
        self._reset_at: float | None = None
        """When a data loss was noticed (None: none since the last grace ended)."""
        self._unsettled: list[CeleryFuture] = []
        """Futures whose message went with a data loss, whose cancel no replica has confirmed yet: asked again
        at every tick until it is, and kept out of the look for messages that are nowhere meanwhile."""

    def suspect(self, *, reset: bool) -> None:
        """The evidence may be incomplete from now on: a reconnect, or (``reset``) Redis lost its data.

        A data loss already being waited out does not extend the wait (the marker stays missing, and cancels
        keep finding it so, until the grace ends and the marker is written back)."""
        now = time.monotonic()
        if reset and self._reset_at is not None:
            return
        if reset:
            logger.warning("Redis has lost its data (this client's marker is gone); judging nothing for %.0fs",
                           GRACE_SECONDS)
            self._reset_at = now
        self._grace_until = max(self._grace_until, now + GRACE_SECONDS)
        self._grace_pending = True

    @property
    def in_grace(self) -> bool:
        return time.monotonic() < self._grace_until

    def check(self, futures: list[CeleryFuture]) -> None:
        if not self._evidence.marker_kept():
            self.suspect(reset=True)
        if self.in_grace:
            return
        unfinished = [f for f in futures if not f.done()]
        if self._grace_pending:
            self._grace_pending = False
            unfinished = self._end_grace(unfinished)
        if self._unsettled:
            self._end_lost_messages([f for f in self._unsettled if not f.done()])
            unfinished = [f for f in unfinished if not f.done() and f not in self._unsettled]
        if not unfinished:
            return
        audit, self.audit_requested = self._a_worker_died() or self.audit_requested, False
        running, held, unclaimed = self._locate(unfinished)
        beats = self._evidence.beats({owner.node for _, owner in running + held})
        dead_running = [(f, o) for f, o in running if beats.get(o.node) != o.boot.encode()]
        dead_holders = [(f, o) for f, o in held if beats.get(o.node) != o.boot.encode()]
        self._settle_dead_runs(dead_running)
        self._take_back(dead_holders)
        if audit and unclaimed:
            self._take_back([(f, None) for f in self._nowhere(unclaimed)])

    def _end_grace(self, unfinished: list[CeleryFuture]) -> list[CeleryFuture]:
        """The evidence is complete again: apply what was stored meanwhile; after a data loss, write the marker
        back and end the futures whose message went with the data. Returns what is still unfinished."""
        for future, meta in zip(unfinished, self._evidence.stored(unfinished), strict=True):
            if meta is not None:
                self._apply_meta(future.task_id, meta)
        unfinished = [f for f in unfinished if not f.done()]
        self.audit_requested = True
        if self._reset_at is None:
            return unfinished
        noticed, self._reset_at = self._reset_at, None
        self._evidence.restore_marker()
        _, _, unclaimed = self._locate(unfinished)
        self._end_lost_messages([f for f in self._nowhere(unclaimed) if f.submitted_at <= noticed])
        return [f for f in unfinished if not f.done()]

    def _end_lost_messages(self, futures: list[CeleryFuture]) -> None:
        """Claim them cancelled (a copy in a worker's memory must not run), then end them with the reason."""
        outcomes = self._evidence.cancel([f.task_id for f in futures]) if futures else []
        self._unsettled = []
        for future, outcome in zip(futures, outcomes, strict=True):
            if outcome.unconfirmed:
                self._unsettled.append(future)
            elif outcome.reset:
                self.suspect(reset=True)
            elif outcome.won:
                future.resolve(exception=RedisDataLostError(
                    f"task {future.task_id} was queued when Redis lost its data (a restart without persistence, or "
                    "a flush): its message is gone, so it did not run, and it is not sent again"))
            elif outcome.owner is not None:  # a worker had reclaimed it after all: watched as running
                future.execution = future.execution or outcome.owner.execution()

    def _a_worker_died(self) -> bool:
        """Whether a worker seen alive at the last tick is gone (or came back as a new boot) since."""
        now = self._evidence.live_boots()
        died = any(now.get(key) != boot for key, boot in self._workers.items())
        self._workers = now
        return died

    def _nowhere(self, futures: list[CeleryFuture]) -> list[CeleryFuture]:
        """The futures whose message is neither waiting in its queue nor fetched (kombu's ``unacked``)."""
        if not futures:
            return []
        queues = sorted({f.route.queue for f in futures if f.route is not None})
        found = set(self._evidence.transport_ids(queues))
        return [f for f in futures if f.task_id.encode() not in found]

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
        for future, value in zip(unknown, self._evidence.claims(unknown), strict=True):
            if (owner := Owner.running(value)) is not None:
                future.execution = future.execution or owner.execution()
                running.append((future, owner))
            elif (owner := Owner.from_claim(value, k.CLAIM_HELD)) is not None:
                held.append((future, owner))
            elif value is None or value == CANCELLED:  # cancelled but not ended: a cancel nobody confirmed
                unclaimed.append(future)
        return running, held, unclaimed

    def _settle_dead_runs(self, dead: list[tuple[CeleryFuture, Owner]]) -> None:
        """Right before ending any of them, read once more, in one transaction with the marker, whether the
        worker beats and whether the task stored a final state: only a run with neither is lost."""
        if not dead:
            return
        snapshot = self._evidence.snapshot([owner.node for _, owner in dead], [f for f, _ in dead])
        if not snapshot.marker_kept:
            self.suspect(reset=True)
            return
        for (future, owner), beat, meta in zip(dead, snapshot.beats, snapshot.metas, strict=True):
            if meta is not None and meta.get("status") in states.READY_STATES:
                self._apply_meta(future.task_id, meta)  # it finished; the message just has not arrived
            elif beat != owner.boot.encode():
                self._on_lost(Lost(future, started=True, owner=owner))

    def _take_back(self, dead: Sequence[tuple[CeleryFuture, Owner | None]]) -> None:
        """Cancel the stranded copies by claim; where that wins, the task never ran and can be sent again."""
        if not dead:
            return
        outcomes = self._evidence.cancel([f.task_id for f, _ in dead])
        for (future, owner), outcome in zip(dead, outcomes, strict=True):
            if outcome.reset:
                self.suspect(reset=True)
                return
            if outcome.unconfirmed:  # no replica has the cancel yet: look again at the next tick
                self.audit_requested = True
            elif outcome.won:
                self._on_lost(Lost(future, started=False, owner=owner))
            elif outcome.owner is not None:  # a worker started it meanwhile: watched as running from now on
                future.execution = future.execution or outcome.owner.execution()


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
