"""Keep a gevent worker answering control commands after its pub/sub connection drops.

On green pools Celery runs the broadcast consumer (``ping``, ``inspect``, ``revoke``) in one greenlet,
``gPidbox.loop``, which ends for good on the first connection error: after a Redis restart, or anything
that kills pub/sub clients, a gevent worker keeps running tasks but never answers ``ping`` again, so its
healthcheck fails and ``interrupt()`` can no longer reach it. Measured here with ``CLIENT KILL TYPE pubsub``:
prefork, threads and solo recover, gevent did not. We go around it in the smallest way: the same loop,
restarted on connection errors with a visible log line and a short backoff.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker import pidbox

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class ResilientGreenPidbox(pidbox.gPidbox):
    """``gPidbox`` whose loop reconnects instead of ending when the broker connection breaks."""

    _stop_requested = False

    def on_stop(self) -> None:
        """Also ends the retry loop: a stop that arrives between two attempts must not be lost."""
        self._stop_requested = True
        super().on_stop()

    def loop(self, c: Any) -> None:
        errors = (*tuple(c.connection_errors), OSError)
        while c.connection is not None and not self._stop_requested:
            try:
                super().loop(c)
                return  # a clean stop (worker shutdown)
            except errors as exc:
                logger.warning("pidbox: broadcast connection lost (%s); reconnecting in %.0fs", exc, RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)


def install() -> None:
    """Make Celery's Control bootstep build our pidbox for green pools; call before the worker starts."""
    pidbox.gPidbox = ResilientGreenPidbox  # type: ignore[misc]
