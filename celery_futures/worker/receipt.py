"""The held mark written in kombu's own receipt pipeline, instead of a round trip of its own.

A worker marks a task held as soon as it takes the message off the queue (``celery_futures/protocol/claims.py``:
the evidence a client needs to take the task back if this worker dies before starting it). Written from
Celery's ``task_received`` signal, that mark was a synchronous ``SET NX`` in the worker's event loop for every
task, about 7% of the prefork main process's busy time in the bench's profile. kombu already sends one
pipeline per received message (``QoS.append``: the message into the ``unacked`` hash and its index), on the
broker's connection, before anything acknowledges it. When the broker and the result backend are the same
Redis (one URL for both, as ``REDIS_URL`` gives our demo), the mark rides in that pipeline: the same moment,
one round trip fewer. Otherwise the signal handler writes it, as before (``claiming._hold_on_receipt``).

The worker bootstep activates it once per worker process (:func:`activate`) when its broker transport is the
guarded one (``celery_futures/worker/message_guard.py``), whose channels use :class:`HoldingQoS`. kombu's
``QoS.append`` is one pipeline we cannot add to from outside, so :class:`HoldingQoS` repeats its few lines
with the mark added; ``tests/integration/test_claims.py`` checks the mark and kombu's records together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

from celery_futures.protocol.claims import Owner
from celery_futures.protocol.installation import result_ttl_of
from celery_futures.protocol.keys import claim_key
from celery_futures.protocol.sentinel import MASTER_OPTION, TRANSPORT_OPTIONS


@dataclass(frozen=True)
class ReceiptHold:
    """What the receipt pipeline needs to write a held mark: this worker's app, its identity, the lifetime."""

    app: Any
    owner: Owner
    ttl: int
    is_claimed: Callable[[Any], bool]

    def claims(self, task_name: Any) -> bool:
        task = self.app.tasks.get(task_name) if isinstance(task_name, str) else None
        return task is not None and self.is_claimed(task)


_active: ReceiptHold | None = None


def same_redis(conf: Any) -> bool:
    """Whether the broker and the result backend are one Redis: the same URL, and for Sentinel the same master."""
    if str(conf.broker_url or "") != str(conf.result_backend or ""):
        return False
    masters = [(conf.get(options) or {}).get(MASTER_OPTION) for options in TRANSPORT_OPTIONS.values()]
    return masters[0] == masters[1]


def activate(app: Any, owner: Owner, is_claimed: Callable[[Any], bool]) -> bool:
    """Write held marks in the receipt pipeline from now on, if the broker is the backend; True if so.
    ``is_claimed(task)`` says which tasks take a claim (those the extension wrapped)."""
    global _active  # noqa: PLW0603 -- one worker per process; the channel's QoS has no other way to reach it
    _active = ReceiptHold(app, owner, result_ttl_of(app), is_claimed) if same_redis(app.conf) else None
    return _active is not None


def deactivate() -> None:
    global _active  # noqa: PLW0603
    _active = None


def held_on_receipt(message: Any = None) -> bool:
    """Whether the receipt pipeline marked this message's task held (so the signal need not): only where it
    is active and the message came through a channel whose QoS is :class:`HoldingQoS`. Asked per message,
    because a connection made some other way (an app's own transport) has kombu's plain QoS."""
    qos = getattr(getattr(message, "channel", None), "qos", None)
    return _active is not None and isinstance(qos, HoldingQoS)


def add_hold(pipe: Any, message: Any) -> None:
    """Add the held mark of ``message``'s task to kombu's receipt pipeline, if this worker claims it."""
    hold = _active
    headers = getattr(message, "headers", None) or {}
    task_id = headers.get("id")
    if hold is None or not isinstance(task_id, str) or not hold.claims(headers.get("task")):
        return
    pipe.set(claim_key(task_id), hold.owner.held_value(), nx=True, ex=hold.ttl)


class HoldingQoS(kombu_redis.QoS):
    """kombu's Redis QoS, whose receipt pipeline also writes the task's held mark (:func:`add_hold`)."""

    def append(self, message: Any, delivery_tag: Any) -> None:
        """kombu 5's ``QoS.append`` (the message into ``unacked`` and its index), plus the mark, one round trip."""
        delivery = message.delivery_info
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            pipe.hset(self.unacked_key, delivery_tag,
                      dumps([message._raw, delivery["exchange"], delivery["routing_key"]]))
            add_hold(pipe, message)
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)  # kombu's own bookkeeping of delivered messages
