"""What a failover can lose, and the fence that keeps a promise from resting on a write that may be lost.

Redis replicates asynchronously: a master acknowledges a write before any replica has it, and if the master
dies at that moment Sentinel promotes a replica without it. To everyone after the failover, Redis has lost
its last few writes. Most such losses only delay a future (``docs/reliability.md`` lists each one): a lost
queue message is found missing and sent again, a lost heartbeat is written at the next beat, a lost held
mark makes the worker refuse the task with ``RedisDataLostError``. Three writes carry a promise that a lost
copy would break, and each is confirmed by a replica before anyone acts on it:

* a **cancel**: ``cancel()`` says True only once a replica has the ``cancelled`` claim; otherwise a
  promoted replica without it would let a worker start the task after all;
* a **start claim**: a task's body runs only once a replica has its ``started:...`` claim; otherwise a cancel
  on the promoted replica would win against a task that is running;
* a **final state** (``celery_futures/worker/durability.py``): a stored result is confirmed, and stored
  again on the new master if the old one died first; otherwise a future whose listener missed the
  PUBLISH would find no result after the failover while its worker beats on, and would wait for ever.

The fence is Redis's own ``WAIT``: after a write of its own on the same connection (``WAIT`` counts from the
connection's last write, and the master applies writes in one order, so that covers every write it took
before), it waits for one replica's acknowledgement. A master with no replica connected passes at once:
nothing it could fail over to lacks the write. A replica that is disconnected and then promoted anyway (a
network partition) can still lack it; Redis's ``min-replicas-to-write`` closes that on the server side.
Only an app whose backend is behind Sentinel pays for it (one round trip per fenced write); a plain
``redis://`` one has nobody to fail over to.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import TimeoutError as RedisTimeoutError

from celery_futures.protocol.backend import is_replicated

if TYPE_CHECKING:
    from redis import Redis

FENCE_KEY: Final = "cfx:fence"
"""The key the fence writes, so its connection has a write to wait for (it expires at once)."""
FENCE_TTL_MS: Final = 1000
WAIT_MS: Final = 1000
"""How long one fence waits for a replica's acknowledgement (on a healthy link it takes well under 1 ms)."""


class UnconfirmedWriteError(RedisTimeoutError):
    """No replica confirmed a write within :data:`WAIT_MS`: treated as a Redis that did not answer (a worker
    retries its claim; a cancel is not decided)."""


class Fence:
    """Confirms that a master's writes so far are on a replica; a no-op when ``enabled`` is False."""

    def __init__(self, enabled: bool, wait_ms: int = WAIT_MS) -> None:
        self.enabled = enabled
        self._wait_ms = wait_ms
        self._replicas = 1
        """Replicas the master had at the last fence (one until it says): with none, do not wait for one."""

    def confirm(self, client: Redis) -> bool:
        """True once every write the master took before this call is on a replica, or it has none."""
        if not self.enabled:
            return True
        waiting = self._replicas > 0
        with client.pipeline(transaction=False) as pipe:
            pipe.set(FENCE_KEY, "1", px=FENCE_TTL_MS)
            pipe.info("replication")
            pipe.wait(1 if waiting else 0, self._wait_ms if waiting else 0)  # WAIT 0 0 answers at once
            replies: list[Any] = pipe.execute()
        connected = int(replies[1].get("connected_slaves", 0))
        self._replicas = connected
        return connected == 0 or int(replies[2]) >= 1

    def require(self, client: Redis) -> None:
        """:meth:`confirm`, raising :class:`UnconfirmedWriteError` when no replica confirmed in time."""
        if not self.confirm(client):
            raise UnconfirmedWriteError(f"no replica confirmed the write within {self._wait_ms} ms")


_fences: weakref.WeakKeyDictionary[Any, Fence] = weakref.WeakKeyDictionary()


def fence_of(app: Any) -> Fence:
    """The fence for ``app``'s backend in this process (one per app, gone with it): enabled behind Sentinel."""
    fence = _fences.get(app)
    if fence is None:
        fence = _fences.setdefault(app, Fence(is_replicated(app)))
    return fence
