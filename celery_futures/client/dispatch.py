"""Hand calls to the broker: in batches, retrying a Redis that is away, and failing what cannot go.

A failed send completes futures, whose done callbacks free slots and take the next calls; on the same
thread those go to a backlog the dispatch loop sends, so a long run of failures cannot overflow the stack.
A send that gave up is made harmless before its futures fail: the executor claims the tasks cancelled, so
no half-written batch can run later. If Redis cannot even be asked, failing the futures would be a guess
(the message may have arrived and may run): they stay outstanding, the watchdog's next look for messages
that are nowhere settles them, and the outage limit bounds the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from celery_futures.client.errors import SendError
from celery_futures.client.evidence import Evidence
from celery_futures.client.flight import Flight, Sendable
from celery_futures.client.future import CeleryFuture
from celery_futures.client.sender import TaskSender, never_delivered, redis_away

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 1.0


class Dispatcher:
    def __init__(self, flight: Flight, sender: TaskSender, evidence: Evidence, *, send_timeout: float,
                 address: str) -> None:
        self._flight = flight
        self._sender = sender
        self._evidence = evidence
        self._send_timeout = send_timeout
        self._address = address
        self.on_uncertain: Callable[[], None] = lambda: None
        """Called when sent messages may or may not have arrived: the watchdog looks for them at its next tick."""
        self._local = threading.local()  # per thread: inside the dispatch loop, and its backlog

    def dispatch(self, batch: list[Sendable]) -> None:
        """Send ``batch``, then whatever became sendable meanwhile, in a loop rather than by recursion."""
        local = self._local
        if getattr(local, "dispatching", False):
            local.backlog.extend(batch)
            return
        local.dispatching, local.backlog = True, []
        try:
            while batch:
                self.send(batch)
                batch, local.backlog = local.backlog + self._flight.take(), []
        finally:
            local.dispatching = False

    def send(self, items: list[Sendable]) -> None:
        """Hand ``items`` to Redis, retrying a Redis that is away until the send deadline, then fail them.

        A retried batch may have been half written; a duplicate message is harmless, the claim lets one
        copy run, and an abandoned batch is cancelled by claim so no half of it can run later.
        """
        deadline = time.monotonic() + self._send_timeout
        delay = FIRST_RETRY_SECONDS
        sent_ids = [(future, future.task_id) for future, _ in items]
        messages = [(task_id, call, future.route) for (future, task_id), (_, call) in zip(sent_ids, items, strict=True)]
        while True:
            try:
                self._sender.send(messages)
                return
            except Exception as exc:
                if not redis_away(exc) or time.monotonic() + delay > deadline:
                    self._fail(sent_ids, exc)
                    return
                logger.warning("cannot send %d task(s) (%s); retrying in %.1fs", len(items), exc, delay)
                time.sleep(delay)
                delay = min(MAX_RETRY_SECONDS, delay * 2)

    def _fail(self, sent_ids: list[tuple[CeleryFuture, str]], cause: BaseException) -> None:
        """Abandon the futures still waiting on this send (one the watchdog sent again under a new id is not)."""
        with self._flight.completing():
            self.abandon([future for future, task_id in sent_ids if future.task_id == task_id], cause)

    def abandon(self, futures: list[CeleryFuture], cause: BaseException) -> None:
        """Sending failed: make sure none of these can run later, then fail them with the reason."""
        try:
            outcomes = self._evidence.cancel([f.task_id for f in futures])
            decided = not any(outcome.reset or outcome.unconfirmed for outcome in outcomes)
            problem = "" if decided else "Redis lost its data, claims included, or no replica confirmed the cancel"
        except redis.RedisError as exc:
            decided, problem = never_delivered(cause), str(exc)
        if not decided:
            logger.warning("%d task(s) may or may not have reached Redis at %s (%s); settling them when it "
                           "answers again", len(futures), self._address, problem)
            self.on_uncertain()
            return
        for future in futures:
            error = SendError(f"could not send task {future.task_id} to Redis at {self._address}: {cause}")
            error.__cause__ = cause
            future.resolve(exception=error)
