"""Put back on the queue the messages a dead worker had fetched but never started, from every worker.

kombu's Redis transport keeps a fetched, unacknowledged message in its ``unacked`` hash and a live worker's
sweep (``QoS.restore_visible``) puts it back once it is older than ``visibility_timeout`` (``worker/app.py``
sets 30 s). The sweep runs from kombu's event loop, and a gevent worker has none: measured here, a gevent
worker never swept, so a message a killed gevent worker had prefetched stayed stranded while only gevent
workers were left. So every worker also runs kombu's own sweep from a native thread, every few seconds. A
sweep takes kombu's ``unacked_mutex``; sweeps from several workers at once simply skip.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from worker.heartbeat import native_thread_tools

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
_running = {"sweeping": False}


def sweep_forever(app: Any) -> None:
    """Run kombu's restore sweep on a connection of this thread's own until the worker shuts down."""
    _, sleep = native_thread_tools()
    while _running["sweeping"]:
        try:
            with app.connection_for_read() as connection:
                while _running["sweeping"]:
                    connection.default_channel.qos.restore_visible(num=None, interval=1)
                    sleep(SWEEP_SECONDS)
        except Exception as exc:  # Redis away: try again next round; this thread must not die
            logger.warning("could not sweep unacknowledged messages: %s", exc)
            sleep(SWEEP_SECONDS)


@worker_ready.connect
def _start_sweeping(sender: Any, **_: Any) -> None:
    _running["sweeping"] = True
    start, _sleep = native_thread_tools()
    start(sweep_forever, (sender.app,))


@worker_shutdown.connect
def _stop_sweeping(**_: Any) -> None:
    _running["sweeping"] = False
