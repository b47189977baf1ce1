"""``python -m worker --check``: exit 0 when this host's worker answers a ping, 1 otherwise.

Ready for a container healthcheck: it asks exactly the node this configuration would start
(``--name``/``WORKER_NAME``), through Celery's own control ``ping``.
"""

from __future__ import annotations

import logging

from celery_futures.protocol.redis_check import backend_problem
from worker.app import create_app
from worker.settings import WorkerSettings

logger = logging.getLogger("worker")

PING_TIMEOUT_SECONDS = 2.0


def check_worker(settings: WorkerSettings) -> int:
    """Return the exit status: 0 if ``settings.name`` answered, 1 if Redis or the worker did not."""
    app = create_app(settings.redis_url, settings.result_ttl, settings.queues[0],
                     sentinel_master=settings.sentinel_master, sentinel_password=settings.sentinel_password)
    try:
        problem = backend_problem(app)
        if problem is not None:
            logger.error("cannot use Redis at %s: %s", settings.redis_address, problem)
            return 1
        replies = app.control.ping(destination=[settings.name], timeout=PING_TIMEOUT_SECONDS)
    finally:
        app.close()
    if any(settings.name in reply for reply in replies or []):
        return 0
    logger.error("worker %s did not answer a ping within %.0fs", settings.name, PING_TIMEOUT_SECONDS)
    return 1
