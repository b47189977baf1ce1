"""redis-py's Sentinel connections keep a reply nobody read; every process of ours drops such a connection.

``redis.sentinel.SentinelManagedConnection.read_response`` defaults ``disconnect_on_error`` to False, where
every other redis-py connection disconnects when a read is interrupted. A Sentinel connection whose read
was interrupted (a gevent worker killing a greenlet for ``interrupt()`` or a time limit, a signal handler
raising, ``KeyboardInterrupt``) goes back to its pool with the reply still on the socket, and the next
command on it reads that reply as its own. Found by a failover drill on the stack: a worker's GET read a
SET's ``+OK``, and the task's state could not be stored (``DecodeError``). The fix is open upstream (redis-py
pull request 4292: make the default True, as it is for every other connection); until a release has it,
:func:`disconnect_interrupted_reads` does exactly that, once per process, from ``install(app)`` and from
``CeleryExecutor``. ``PubSub`` passes the flag explicitly and is unaffected.
"""

from __future__ import annotations

import functools
from typing import Any, Final

PATCHED: Final = "__celery_futures_disconnects__"


def disconnect_interrupted_reads() -> None:
    """Make an interrupted read close a Sentinel-managed connection, as it closes every other (idempotent).

    redis is imported here, not at module level: a gevent worker imports the protocol before it patches."""
    from redis.sentinel import SentinelManagedConnection

    original = SentinelManagedConnection.read_response
    if getattr(original, PATCHED, False):
        return

    @functools.wraps(original)
    def read_response(self: Any, disable_decoding: bool = False, *, disconnect_on_error: bool = True,
                      **kwargs: Any) -> Any:
        return original(self, disable_decoding, disconnect_on_error=disconnect_on_error, **kwargs)

    setattr(read_response, PATCHED, True)
    SentinelManagedConnection.read_response = read_response  # type: ignore[method-assign,assignment]
