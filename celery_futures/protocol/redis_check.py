"""Ask Redis once whether it can be used, and say in one line why not.

A wrong password or a typo in the host ends, inside Celery and redis-py, in a wall of traceback. Both the
client (at ``CeleryExecutor()``) and a worker's health check need the same short answer instead.
"""

from __future__ import annotations

import redis
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError, TimeoutError


def redis_problem(url: str, timeout: float = 3.0) -> str | None:
    """None if Redis at ``url`` answers PING with our credentials, else a short reason."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
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
