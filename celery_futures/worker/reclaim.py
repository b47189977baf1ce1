"""After Redis lost its data: say again which tasks this worker has, so no cancel can win against them.

The claims of running tasks went with the data. The worker's own bookkeeping still knows them: Celery keeps
every request handed to the pool in ``celery.worker.state.active_requests``, and marks the ones a pool
process or thread has begun (``time_start``, set when the pool accepts the job, just before the start
claim). Those get ``reclaimed:<owner>`` (``celery_futures/protocol/claims.py``): a task that had won its
claim runs on under it; one that had not reached its claim yet finds the reclaim there and refuses to run,
because whether it was cancelled before the loss cannot be known. Requests not accepted yet get nothing:
their empty claim makes them refuse too.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker import state as worker_state

from celery_futures.protocol.backend import new_backend_redis
from celery_futures.protocol.claims import Owner, reclaim
from celery_futures.protocol.installation import result_ttl_of

logger = logging.getLogger(__name__)


def accepted_task_ids() -> list[str]:
    """Ids of the requests this worker's pool has begun (``list()`` of the set is one call under the GIL)."""
    return [request.id for request in list(worker_state.active_requests) if request.time_start]


class Reclaimer:
    """Reclaims a worker boot's accepted tasks on a client of its own (called from the heartbeat's thread)."""

    def __init__(self, app: Any, owner: Owner) -> None:
        self._app = app
        self._owner = owner

    def __call__(self) -> int:
        task_ids = accepted_task_ids()
        if not task_ids:
            return 0
        client = new_backend_redis(self._app, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            written = reclaim(client, task_ids, self._owner, result_ttl_of(self._app))
        finally:
            client.close()
        logger.warning("reclaimed %d of %d accepted task(s) for %s", written, len(task_ids), self._owner.node)
        return written
