"""Reach Redis before Celery starts, and say in one line why not.

Celery retries the broker itself, but a wrong password or a typo in the host ends in a traceback wall.
This check turns each failure into one line with host, port and reason, and retries with a visible log
line until Redis answers (or until ``--connect-attempts`` runs out, then exit status 1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError, TimeoutError

from worker.settings import parse_redis_url

logger = logging.getLogger("worker")

MAX_DELAY_SECONDS = 5.0


def redis_problem(url: str, timeout: float = 3.0) -> str | None:
    """None if Redis at ``url`` answers PING with our credentials, else a short reason."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except AuthenticationError:
        return "it refused the password (AUTH failed)"
    except ResponseError as exc:
        if "NOAUTH" in str(exc):
            return "it needs a password and the URL has none"
        return f"it answered with an error: {exc}"
    except (ConnectionError, TimeoutError) as exc:
        return connection_reason(exc)
    except RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None


def connection_reason(exc: Exception) -> str:
    """The OS-level reason (``Connection refused``, ``Name or service not known``) without redis-py's prose."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(exc).rstrip(".") or type(exc).__name__


def wait_for_redis(
    url: str, attempts: int, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Ping until Redis answers; ``attempts`` = 0 means for ever. True once it answers."""
    address = parse_redis_url(url)
    attempt = 0
    while (problem := redis_problem(url)) is not None:
        attempt += 1
        if attempts and attempt >= attempts:
            logger.error("cannot use Redis at %s: %s; giving up after %d attempt(s)", address, problem, attempt)
            return False
        delay = min(MAX_DELAY_SECONDS, 0.5 * 2 ** (attempt - 1))
        logger.warning("cannot use Redis at %s: %s; retrying in %.1fs (attempt %d)", address, problem, delay, attempt)
        sleep(delay)
    return True
