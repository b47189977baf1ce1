"""Ask Redis once whether it can be used, and say in one line why not.

A wrong password or a typo in the host ends, inside Celery and redis-py, in a wall of traceback. Both the
client (at ``CeleryExecutor()``) and a worker's health check need the same short answer instead. The client
asked is made by the app's own backend factory, so a ``sentinel://`` app is asked through its sentinels
(a master name they do not know is "No master found for ...").
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError, TimeoutError

from celery_futures.protocol.backend import new_backend_redis


def backend_problem(app: Any, timeout: float = 3.0) -> str | None:
    """None if ``app``'s result backend (behind Sentinel: its current master) answers PING, else a short reason."""
    client = new_backend_redis(app, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return client_problem(client)
    finally:
        client.close()


def client_problem(client: redis.Redis) -> str | None:
    """None if ``client`` gets PONG, else why not, in a few words."""
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
    return None


def connection_reason(exc: Exception) -> str:
    """The OS-level reason (``Connection refused``, ``Name or service not known``) without redis-py's prose."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(exc).rstrip(".") or type(exc).__name__
