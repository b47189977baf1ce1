"""Ask Redis whether it can be used, and say in one line why not.

A wrong password or a typo in the host ends, inside Celery and redis-py, in a wall of traceback. Both the
client (at ``CeleryExecutor()``) and a worker's health check need the same short answer instead. The client
asked is made by the app's own backend factory, so a ``sentinel://`` app is asked through its sentinels
(a master name they do not know is "No master found for ...").
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from celery_futures.protocol.backend import new_backend_redis

LOADING = "it is loading its dataset into memory"
"""What a Redis says (``LOADING``) between its start and the end of reading its RDB or AOF file."""
LOADING_POLL_SECONDS = 0.05


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
    except RedisError as exc:
        return error_reason(exc)
    return None


SAID_AS_IS: tuple[tuple[type[RedisError], str], ...] = (
    (AuthenticationError, "it refused the password (AUTH failed)"),
    (BusyLoadingError, LOADING),
)
"""Errors with one fixed reason, checked first: both are kinds of ``ConnectionError`` to redis-py."""


def error_reason(exc: RedisError) -> str:
    for kind, reason in SAID_AS_IS:
        if isinstance(exc, kind):
            return reason
    if isinstance(exc, ResponseError):
        needs_auth = "NOAUTH" in str(exc)
        return "it needs a password and the URL has none" if needs_auth else f"it answered with an error: {exc}"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return connection_reason(exc)
    return str(exc)


def problem_once_loaded(client: redis.Redis, timeout: float) -> str | None:
    """:func:`client_problem`, except that a Redis still loading its dataset is asked again until ``timeout``:
    it is up and will answer, as every Redis with persistence does a moment after each restart. Any other
    problem (refused, wrong password) is said at once."""
    deadline = time.monotonic() + timeout
    problem = client_problem(client)
    while problem == LOADING and time.monotonic() < deadline:
        time.sleep(LOADING_POLL_SECONDS)
        problem = client_problem(client)
    return f"{LOADING}, still after {timeout:g}s" if problem == LOADING else problem


def connection_reason(exc: Exception) -> str:
    """The OS-level reason (``Connection refused``, ``Name or service not known``) without redis-py's prose."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(exc).rstrip(".") or type(exc).__name__
