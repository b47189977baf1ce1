"""A worker's proof of life: ``cfx:alive:<node>`` holds this boot's id and expires unless refreshed.

Celery records a killed prefork child as ``WorkerLostError``, but when a whole worker dies (SIGKILL, OOM,
a pulled plug) its running tasks stay STARTED for ever. So each worker refreshes a key from a real OS thread
(``celery_futures/worker/threads.py``), which keeps beating while a task hogs the CPU, a solo worker runs a
task inline, or gevent's loop is blocked. The client compares the key with the boot id in a task's claim:
missing or different means the worker that ran the task is gone, and its policy decides the future.

Each beat also adds the node to ``cfx:alive-nodes`` (in the same round trip), the registry clients read
instead of scanning the keyspace for heartbeat keys.

Each beat also reads back what the key held (``SET ... GET``). Missing after an earlier beat means Redis lost
its data (a restart without persistence, a flush), or this worker could not beat for the key's whole
lifetime: either way the claims of what it runs may be gone, so it says at once that it is alive and
reclaims what its pool has accepted (``on_reset``), before any client decides a cancel again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis

from celery_futures.protocol.keys import ALIVE_NODES, ALIVE_TTL_SECONDS, BEAT_SECONDS, alive_key
from celery_futures.worker.threads import Repeater

if TYPE_CHECKING:
    from redis import Redis

logger = logging.getLogger(__name__)


class Heartbeat:
    """Beats for one worker boot (``node``, ``boot``) on a Redis client of its own.

    The client is made on the beating thread itself: on a gevent worker, a client made on the main thread
    has sockets and locks of the main thread's hub, and a native thread cannot wait on those.
    """

    def __init__(self, new_client: Callable[[], Redis], node: str, boot: str,
                 on_reset: Callable[[], object] = lambda: None) -> None:
        self._new_client = new_client
        self._client: Redis | None = None
        self._node = node
        self._boot = boot
        self._on_reset = on_reset
        self._beaten = False
        self.resets = 0
        """How many times this boot found its key gone (Redis lost its data, or it could not beat for a TTL)."""
        self._repeater = Repeater(self.beat, BEAT_SECONDS, self._failed)

    def beat(self) -> None:
        """Refresh the key; if it had vanished since the last beat, reclaim what this worker runs."""
        if self._client is None:
            self._client = self._new_client()
        with self._client.pipeline(transaction=False) as pipe:
            pipe.set(alive_key(self._node), self._boot, ex=ALIVE_TTL_SECONDS, get=True)
            pipe.sadd(ALIVE_NODES, self._node)
            pipe.expire(ALIVE_NODES, ALIVE_TTL_SECONDS)  # like every key of ours, it goes when nobody beats
            previous, _, _ = pipe.execute()
        held = previous.decode() if isinstance(previous, bytes) else previous
        if self._beaten and held != self._boot:
            self.resets += 1
            logger.warning("heartbeat for %s: its key was gone (Redis lost its data, or no beat for %ds); "
                           "reclaiming the tasks this worker has", self._node, ALIVE_TTL_SECONDS)
            self._on_reset()
        self._beaten = True

    def start(self) -> None:
        self._repeater.start()
        logger.info("heartbeat started for %s (boot %s)", self._node, self._boot)

    def stop(self) -> None:
        """Clean shutdown: running tasks have finished by now, so the key can go at once."""
        self._repeater.stop()
        try:
            with self._new_client() as client:  # this thread's own: the beating one may be mid-call
                client.pipeline(transaction=False).delete(alive_key(self._node)).srem(ALIVE_NODES, self._node).execute()
        except redis.RedisError as exc:
            logger.warning("could not clear heartbeat for %s: %s", self._node, exc)

    def _failed(self, exc: Exception) -> None:
        logger.warning("heartbeat for %s failed: %s", self._node, exc)
