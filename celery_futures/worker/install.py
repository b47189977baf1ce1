"""``install(app)``: the one call that makes a Celery app's workers honour the protocol.

Call it where the app is defined, so every process that loads the app (workers, their children, producers)
gets it. It marks the app (the client refuses tasks of an app without the mark), registers the generic
runner ``celery_futures.call`` and the chunk task ``celery_futures.chunk``, applies the protocol's settings
each time the app's configuration loads (``celery_futures/worker/config.py``), makes its broker connections
keep the guarded transport across a failover (``celery_futures/worker/failover_connection.py``), and adds the worker
bootstep (``celery_futures/worker/bootstep.py``) that checks them, claims every task before it runs, and
beats the heartbeat, and the consumer bootstep that sends task events in batches
(``celery_futures/worker/events.py``).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from celery_futures.protocol.installation import is_installed, mark_installed
from celery_futures.protocol.sentinel_reads import disconnect_interrupted_reads

# imported for the signal handlers they connect: prefork children's death hook, final states behind Sentinel
from celery_futures.worker import children, durability  # noqa: F401
from celery_futures.worker.bootstep import ProtocolStep
from celery_futures.worker.chunks import register_chunk_task
from celery_futures.worker.config import apply_protocol_settings
from celery_futures.worker.events import EventBatching
from celery_futures.worker.failover_connection import GuardedFailoverConnection
from celery_futures.worker.runner import register_runner


def install(app: Celery) -> Celery:
    """Enable truthful futures for ``app`` and return it; calling it again changes nothing.

    A setting the protocol needs that the app sets otherwise (pickle, a non-Redis backend) is reported
    when a worker or a ``CeleryExecutor`` starts, naming the setting.
    """
    if not isinstance(app, Celery):
        raise TypeError(f"install() takes a Celery app, not {type(app).__name__}")
    if is_installed(app):
        return app
    mark_installed(app)
    disconnect_interrupted_reads()  # redis-py's Sentinel connections, fixed for this process
    register_runner(app)
    register_chunk_task(app)
    app.on_after_configure.connect(_on_configure, weak=False)
    if getattr(app, "configured", False):  # already loaded: the signal has fired
        apply_protocol_settings(app.conf)
    app.steps["worker"].add(ProtocolStep)
    app.steps["consumer"].add(EventBatching)
    app.amqp.Connection = GuardedFailoverConnection  # the guard survives a switch to another broker URL
    return app


def _on_configure(sender: Any = None, source: Any = None, **_: Any) -> None:
    apply_protocol_settings(source)
