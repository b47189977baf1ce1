"""Put back on the queue the messages a dead worker had fetched but never started, from every worker.

kombu's Redis transport keeps a fetched, unacknowledged message in its ``unacked`` hash and a live worker's
sweep (``QoS.restore_visible``) puts it back once it is older than ``visibility_timeout`` (``install()``
makes that 30 s unless the app says otherwise). The sweep runs from kombu's event loop, and a gevent worker
has none: measured here, a gevent worker never swept, so a message a killed gevent worker had prefetched
stayed stranded while only gevent workers were left. So every worker also runs kombu's own sweep from a
native thread, every few seconds. A sweep takes kombu's ``unacked_mutex``; sweeps from several workers at
once simply skip.
"""

from __future__ import annotations

import logging
from typing import Any

from celery_futures.worker.threads import native_thread_tools

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0


class Sweeper:
    """Runs kombu's restore sweep on a connection of its own thread until :meth:`stop`."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._running = False

    def start(self) -> None:
        start, _ = native_thread_tools()
        self._running = True
        start(self._loop, ())

    def stop(self) -> None:
        self._running = False

    def _loop(self) -> None:
        _, sleep = native_thread_tools()
        while self._running:
            try:
                with self._app.connection_for_read() as connection:
                    while self._running:
                        connection.default_channel.qos.restore_visible(num=None, interval=1)
                        sleep(SWEEP_SECONDS)
            except Exception as exc:  # Redis away: try again next round; this thread must not die
                logger.warning("could not sweep unacknowledged messages: %s", exc)
                sleep(SWEEP_SECONDS)
