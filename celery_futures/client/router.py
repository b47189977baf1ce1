"""What each backend state means for a future, and the liveness watchdog for running tasks.

The listener thread calls :class:`StateRouter` for every message; it is the only place that turns
Celery states into future transitions:

* STARTED: the worker won the claim, the future is running (with where it runs);
* PROGRESS: the task's ``{"current", "total"}`` meta, for progress callbacks;
* SUCCESS / FAILURE: the result, or the exception rebuilt with its type and remote traceback;
* REVOKED: for a running task, an interrupt (``TaskInterruptedError``); for one not started, a revoke
  from outside (Flower, ``celery control``) which our claim turns into an exact cancel, if it still can.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import states

from celery_futures.client.errors import RedisUnavailableError, TaskInterruptedError, WorkerLostError, rebuild_exception
from celery_futures.client.evidence import Evidence
from celery_futures.client.flight import Flight
from celery_futures.client.future import CeleryFuture
from celery_futures.client.watchdog import Lost, Watchdog, owner_of
from celery_futures.protocol.keys import STATE_PROGRESS

logger = logging.getLogger(__name__)


class StateRouter:
    def __init__(self, flight: Flight, evidence: Evidence, *, outage_limit: float,
                 on_lost: Callable[[Lost], None]) -> None:
        """Nothing here may hold the executor itself: this router lives on the listener thread, and an executor
        dropped without ``shutdown()`` must be collectable once nothing of it is outstanding."""
        self._flight = flight
        self._outage_limit = outage_limit
        self._evidence = evidence
        self._on_lost = on_lost
        self._watchdog = Watchdog(evidence, apply_meta=self._apply_guarded, on_lost=on_lost)
        self.on_tick: Callable[[], None] = lambda: None
        """Run at every tick before the watchdog: the cancels no replica had confirmed are asked again."""
        self._handlers: dict[str, Callable[[CeleryFuture, dict[str, Any]], None]] = {
            states.STARTED: self._started,
            STATE_PROGRESS: self._progress,
            states.SUCCESS: self._success,
            states.FAILURE: self._failure,
            states.REVOKED: self._revoked,
        }

    def on_state(self, task_id: str, meta: Any) -> None:
        future = self._flight.lookup(task_id)
        if not isinstance(meta, dict):
            logger.warning("ignoring a state message for %s that is not a mapping: %r", task_id, meta)
            return
        handler = self._handlers.get(str(meta.get("status")))
        if future is not None and handler is not None:
            handler(future, meta)

    def request_audit(self) -> None:
        """At the next tick, look for sent messages that are nowhere (``celery_futures/client/watchdog.py``)."""
        self._watchdog.audit_requested = True

    def suspect_reset(self) -> None:
        """A cancel found the client's marker gone: Redis lost its data; judge nothing until the grace ends."""
        self._watchdog.suspect(reset=True)

    def on_resubscribed(self) -> None:
        """Apply the stored state of every sent task (what was published while we were away), then judge
        nothing for a grace period: Redis may have restarted, and its workers must beat again first. At its
        end the watchdog looks for messages that are nowhere, which a restart can swallow."""
        self._watchdog.suspect(reset=False)
        futures = self._flight.sent()
        for future, meta in zip(futures, self._evidence.stored(futures), strict=True):
            if meta is not None:
                self._apply_guarded(future.task_id, meta)

    def _apply_guarded(self, task_id: str, meta: Any) -> None:
        """One unreadable stored state must not stop the others from being applied."""
        try:
            self.on_state(task_id, meta)
        except Exception:
            logger.exception("could not apply the stored state of %s", task_id)

    def on_idle(self) -> None:
        """Settle unconfirmed cancels, then find futures whose worker stopped beating; their policy decides."""
        self.on_tick()
        self._watchdog.check(self._flight.sent())

    def on_outage(self, seconds: float) -> None:
        """Redis gone for longer than the limit: end every outstanding future with the reason, not silence."""
        if seconds >= self._outage_limit:
            self._flight.fail_all(RedisUnavailableError(
                f"Redis has been unreachable for {seconds:.0f}s (limit {self._outage_limit:.0f}s); "
                "the task's outcome is unknown"))

    @staticmethod
    def _started(future: CeleryFuture, meta: dict[str, Any]) -> None:
        result = meta.get("result")
        future.mark_started(result if isinstance(result, dict) else {})

    @staticmethod
    def _progress(future: CeleryFuture, meta: dict[str, Any]) -> None:
        result = meta.get("result")
        future.report_progress(result if isinstance(result, dict) else {"value": result})

    @staticmethod
    def _success(future: CeleryFuture, meta: dict[str, Any]) -> None:
        future.resolve(result=meta.get("result"))

    def _failure(self, future: CeleryFuture, meta: dict[str, Any]) -> None:
        error = rebuild_exception(meta.get("result"), meta.get("traceback"))
        if isinstance(error, WorkerLostError) and not future.done():  # Celery's word for a killed prefork child
            self._on_lost(Lost(future, started=True, owner=owner_of(future.execution), error=error))
            return
        future.resolve(exception=error)

    @staticmethod
    def _revoked(future: CeleryFuture, meta: dict[str, Any]) -> None:
        if future.done():
            return
        if future.running():
            future.resolve(exception=TaskInterruptedError(interrupted_message(future, meta)))
        else:
            future.cancel()


def interrupted_message(future: CeleryFuture, meta: dict[str, Any]) -> str:
    where = future.execution or {}
    result = meta.get("result")
    reason = " ".join(map(str, result.get("exc_message") or [])) if isinstance(result, dict) else ""
    return (f"task {future.task_id} was interrupted on {where.get('hostname', '?')} "
            f"({where.get('pool', '?')} pool){': ' + reason if reason else ''}")
