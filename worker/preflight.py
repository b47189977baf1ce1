"""Reach Redis before Celery starts, and say in one line why not.

Celery retries the broker itself, but a wrong password or a typo in the host ends in a traceback wall.
This check turns each failure into one line with host, port and reason, and retries with a visible log
line until Redis answers (or until ``--connect-attempts`` runs out, then exit status 1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery_futures.protocol.redis_check import backend_problem

logger = logging.getLogger("worker")

MAX_DELAY_SECONDS = 5.0


def wait_for_redis(
    app: Any, address: object, attempts: int, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Ping ``app``'s Redis (``address`` in messages) until it answers; ``attempts`` = 0 means for ever. True
    once it answers."""
    attempt = 0
    while (problem := backend_problem(app)) is not None:
        attempt += 1
        if attempts and attempt >= attempts:
            logger.error("cannot use Redis at %s: %s; giving up after %d attempt(s)", address, problem, attempt)
            return False
        delay = min(MAX_DELAY_SECONDS, 0.5 * 2 ** (attempt - 1))
        logger.warning("cannot use Redis at %s: %s; retrying in %.1fs (attempt %d)", address, problem, delay, attempt)
        sleep(delay)
    return True
