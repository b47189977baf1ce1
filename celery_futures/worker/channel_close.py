"""A Redis broker channel that can still be closed after kombu detached its transport, so a Redis restart
never ends a worker.

On a lost broker connection Celery's consumer first ``collect()``s the connection and then ``close()``s it
(``Consumer.on_connection_error_after_connected``, Celery 5.7). ``collect()`` closes the transport's channels
one by one and stops at the first connection error (a fanout channel's ``queue_delete`` to a Redis that is
down), so the channels after it stay open; then it detaches the transport (``transport.client = None``). The
``close()`` that follows closes the default channel again, and kombu's Redis channel restores its
unacknowledged messages through a new pool built from ``transport.client``: ``AttributeError``, which is not a
connection error, so Celery calls it unrecoverable and the worker exits. Our soak saw it on a prefork worker
across a 0.25 s Redis restart.

The channel keeps the kombu ``Connection`` it was opened on and lends it to the transport for the one pool it
builds while detached. The restore then either works (Redis is back) or fails as a connection error, which
Celery ignores; a restore that failed leaves the messages in kombu's ``unacked`` hash, which the visibility
sweep brings back (``celery_futures/worker/redelivery.py``).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class DetachableChannel(kombu_redis.Channel):
    """kombu's Redis channel, which remembers where it connected to for a close after its transport was detached."""

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self.opened_on = connection.client
        """The kombu ``Connection`` (URL, password, transport options) this channel was opened on."""
        super().__init__(connection, *args, **kwargs)

    def _get_pool(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport.client is not None:
            return super()._get_pool(asynchronous)  # type: ignore[misc]  # not in the stubs
        transport.client = self.opened_on
        try:
            return super()._get_pool(asynchronous)  # type: ignore[misc]
        finally:
            transport.client = None
