"""The worker bootstep: what a Celery worker of an installed app does at start and at stop.

Why a bootstep (``app.steps['worker']``): it is Celery's own way to add to a worker, it runs in every worker
the app starts however it is started (``celery -A proj worker``, our ``python -m worker``, a test), it can
refuse to start with a reason, and its ``__init__`` runs after the task modules are imported and before the
pool forks (Celery builds every step before it starts any), which is the one moment to wrap each task class
for the claim and have prefork children inherit it. In order:

1. check the app's settings against the protocol (a bad one stops the worker with the reason);
2. start a new boot: a fresh boot id, the pool's name and the main process id, in the environment children
   inherit (prefork children die with that process: ``celery_futures/worker/children.py``);
3. wrap every task class with the claim (``celery_futures/worker/claiming.py``), and write held marks in
   kombu's receipt pipeline where the broker is the backend (``celery_futures/worker/receipt.py``);
4. on a green pool, make the control loop reconnect (``celery_futures/worker/green_pidbox.py``);
5. once the worker is ready (``worker_ready``), the heartbeat and the sweep of stranded messages, each on a
   native thread: not earlier, because a native thread that opens a connection while a gevent worker's main
   thread is still importing deadlocks on the import lock (seen here: the worker exited with ``LoopExit``);
   at stop, both end and the heartbeat key goes at once (a clean stop is not a death).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from celery import bootsteps
from celery.signals import worker_ready

from celery_futures.protocol.backend import new_backend_redis
from celery_futures.protocol.claims import Owner
from celery_futures.protocol.pools import pool_of_class
from celery_futures.protocol.requirements import check_protocol_settings
from celery_futures.protocol.settings import event_flush_seconds_of
from celery_futures.worker import green_pidbox, receipt
from celery_futures.worker.children import PARENT_PID
from celery_futures.worker.claiming import claim_tasks, is_claimed
from celery_futures.worker.failover_connection import is_guarded
from celery_futures.worker.heartbeat import Heartbeat
from celery_futures.worker.identity import UNKNOWN_POOL, new_boot
from celery_futures.worker.reclaim import Reclaimer
from celery_futures.worker.redelivery import Sweeper

logger = logging.getLogger(__name__)

HEARTBEAT_SOCKET_SECONDS = 5.0


class ProtocolStep(bootsteps.StartStopStep):
    """Makes a worker honour the protocol; added to an app's worker blueprint by ``install(app)``."""

    label = "celery_futures"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        app = worker.app
        check_protocol_settings(app)
        event_flush_seconds_of(app.conf)  # the event batching's interval, refused here rather than in the consumer
        spec = pool_of_class(worker.pool_cls)
        pool_name = spec.name if spec else UNKNOWN_POOL
        self.boot = new_boot(pool_name)
        os.environ[PARENT_PID] = str(os.getpid())
        wrapped = claim_tasks(app)
        if getattr(worker.pool_cls, "is_green", False):
            green_pidbox.install()
        new_client = functools.partial(new_backend_redis, app, socket_timeout=HEARTBEAT_SOCKET_SECONDS,
                                       socket_connect_timeout=HEARTBEAT_SOCKET_SECONDS)
        owner = Owner(pool_name, worker.hostname, self.boot)
        if not (is_guarded(app.conf.broker_transport) and receipt.activate(app, owner, is_claimed)):
            receipt.deactivate()  # the task_received signal writes the held mark instead
        self.heartbeat = Heartbeat(new_client, worker.hostname, self.boot, on_reset=Reclaimer(app, owner))
        self.sweeper = Sweeper(app)
        self._worker = worker
        worker_ready.connect(self._on_ready, weak=False)
        logger.info("celery_futures: %d task(s) claimed before they run, pool %s, boot %s",
                    wrapped, pool_name, self.boot)

    def _on_ready(self, sender: Any = None, **_: Any) -> None:
        if getattr(sender, "controller", None) is self._worker:
            self.heartbeat.start()
            self.sweeper.start()

    def stop(self, worker: Any) -> None:
        self.sweeper.stop()
        self.heartbeat.stop()

    def terminate(self, worker: Any) -> None:
        self.stop(worker)
