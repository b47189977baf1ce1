"""``cancel()``, ``interrupt()`` and ``shutdown(cancel_futures=True)``: the claim decides, cluster-wide.

A call still waiting in the executor is cancelled locally. A sent one is cancelled by the claim script
(``celery_futures/protocol/claims.py``): it wins unless a worker has started the task, and then the task
never runs anywhere. If Redis cannot be asked, ``cancel()`` returns False and the future stays pending: a
guess either way could contradict what happens. A running task is stopped by ``interrupt()`` as far as its
pool allows: the cooperative flag always, plus the pool's own signal or greenlet kill where it has one.
The claim is not decided while the client's marker is gone (Redis lost its data and, with it, the claims of
running tasks, until their workers reclaim them), nor, behind Sentinel, while no replica has confirmed it (a
failover could lose it): ``cancel()`` is then False and the future stays pending until the task's own
outcome, or the watchdog, settles it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

import redis

from celery_futures.client.evidence import Evidence
from celery_futures.client.flight import Flight
from celery_futures.client.future import CeleryFuture
from celery_futures.protocol.claims import CancelClaim, request_interrupt
from celery_futures.protocol.pools import POOLS, Interrupt

logger = logging.getLogger(__name__)

CLAIM_CHUNK = 1000
"""Cancel claims per pipeline: one round trip for a thousand tasks, and no command holds Redis for long."""

Revoke = Callable[[str, str], None]
"""``revoke(task_id, node)``: ask the worker ``node`` to terminate the task (a Celery control broadcast)."""


class Canceller:
    def __init__(self, flight: Flight, evidence: Evidence, redis_client: redis.Redis, ttl: int,
                 revoke: Revoke) -> None:
        self._flight = flight
        self._evidence = evidence
        self._redis = redis_client
        self._ttl = ttl
        self._revoke = revoke
        self.on_reset: Callable[[], None] = lambda: None
        """Called when a claim found the client's marker gone: the watchdog holds its judgment."""
        self._unconfirmed: set[CeleryFuture] = set()
        """Futures whose cancel was written, not confirmed by a replica: asked again by :meth:`retry_unconfirmed`."""
        self._unconfirmed_lock = threading.Lock()

    def claim_cancel(self, future: CeleryFuture) -> bool | None:
        """True: cancelled before it started (never runs); False: a worker started it; None: Redis did not say."""
        if self._flight.withdraw(future.task_id):
            return True  # never sent: nothing to ask anyone
        try:
            outcome = self._evidence.cancel([future.task_id])[0]
        except redis.RedisError as exc:
            logger.warning("cannot cancel %s: Redis did not answer (%s)", future.task_id, exc)
            return None
        return self._decided(future, outcome)

    def _decided(self, future: CeleryFuture, outcome: CancelClaim) -> bool | None:
        """What a claim's outcome means for ``cancel()``: True, False, or None (not decided: Redis lost data)."""
        if outcome.reset:
            logger.warning("cannot cancel %s yet: Redis lost its data and the claims with it", future.task_id)
            self.on_reset()
            return None
        if outcome.unconfirmed:  # a failover could still lose it: not a cancel yet (asked again every tick)
            with self._unconfirmed_lock:
                self._unconfirmed.add(future)
            return None
        if outcome.owner is not None and future.execution is None:
            future.execution = outcome.owner.execution()
        return outcome.won

    def retry_unconfirmed(self) -> None:
        """Ask again for each cancel no replica had confirmed (the listener's tick): confirmed now, the future
        is cancelled; a worker that started it meanwhile makes it run on; undecided (no replica yet, or no
        Redis at all during a failover), it is asked again at the next tick."""
        with self._unconfirmed_lock:
            pending, self._unconfirmed = self._unconfirmed, set()
        for future in pending:
            if not future.done() and not future.cancel() and not (future.running() or future.done()):
                with self._unconfirmed_lock:
                    self._unconfirmed.add(future)

    def interrupt(self, future: CeleryFuture) -> Interrupt | None:
        execution = future.execution
        if not future.running() or execution is None:
            return None
        spec = POOLS.get(str(execution.get("pool")))
        method = spec.interrupt if spec else Interrupt.COOPERATIVE
        request_interrupt(self._redis, future.task_id, self._ttl)
        if method in (Interrupt.SIGNAL, Interrupt.KILL_GREENLET):
            self._revoke(future.task_id, str(execution["hostname"]))
        return method

    def cancel_unstarted(self) -> None:
        """``shutdown(cancel_futures=True)``: unsent ones locally, sent ones by claim, pipelined."""
        unsent = self._flight.withdraw_all()
        sent = self._flight.sent()
        with self._flight.completing():
            for future in unsent:
                future.settle_cancel(functools.partial(bool, True))
            self.cancel_by_claim([f for f in sent if not (f.running() or f.done())])

    def cancel_by_claim(self, candidates: list[CeleryFuture]) -> None:
        for start in range(0, len(candidates), CLAIM_CHUNK):
            chunk = candidates[start:start + CLAIM_CHUNK]
            try:
                ids = [f.task_id for f in chunk]
                outcomes = self._evidence.cancel(ids)
            except redis.RedisError as exc:
                logger.warning("could not cancel %d queued task(s): %s", len(chunk), exc)
                continue
            for future, claimed, outcome in zip(chunk, ids, outcomes, strict=True):
                future.settle_cancel(functools.partial(self._claimed, future, claimed, outcome))

    def withdraw(self, futures: list[CeleryFuture]) -> None:
        """Cancel a failed map's futures: first take them all off the waiting line, so that cancelling one
        (whose callback frees a slot) cannot send another; a claim covers any that another thread sent."""
        unsent = {f.task_id for f in self._flight.withdraw_all(futures)}
        with self._flight.completing():
            for future in futures:
                if future.task_id in unsent:
                    future.settle_cancel(functools.partial(bool, True))
                else:
                    future.cancel()

    def _claimed(self, future: CeleryFuture, claimed_id: str, outcome: CancelClaim) -> bool | None:
        """A pipelined claim's outcome, if it still concerns the future's task (run under the futures' lock);
        a future sent again meanwhile under a new id is claimed afresh."""
        return self._decided(future, outcome) if future.task_id == claimed_id else self.claim_cancel(future)
