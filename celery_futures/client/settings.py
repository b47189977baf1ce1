"""Client settings: where to connect and send (or the app's own answer), and the client's bounds.

Every value is checked where it enters, with a message naming the argument or the variable and what it
allows. ``None`` for ``redis_url``, ``queue``, ``allowlist`` and ``result_ttl`` means "the app's": its
broker and backend, its routing, its ``celery_futures_allowlist`` and its ``result_expires``. An executor
without an app of its own reads those four from the environment instead (:meth:`ClientSettings.standalone`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from celery_futures.protocol.allowlist import Allowlist
from celery_futures.protocol.sentinel import ENV_SENTINEL_MASTER, ENV_SENTINEL_PASSWORD, redis_settings
from celery_futures.protocol.settings import (
    DEFAULT_QUEUE,
    DEFAULT_REDIS_URL,
    ENV_REDIS_URL,
    SettingsError,
    allowlist_from,
    parse_queue,
    parse_redis_url,
    parse_whole,
    result_ttl_from,
)

ENV_QUEUE: Final = "PRODUCER_QUEUE"
"""The queue a standalone executor's tasks go to unless it is given one."""
ENV_CONNECT_TIMEOUT: Final = "PRODUCER_CONNECT_TIMEOUT"
"""Seconds a client waits for Redis at start before it says it cannot reach it."""
ENV_SEND_TIMEOUT: Final = "PRODUCER_SEND_TIMEOUT"
"""Seconds a client keeps trying to hand a task to Redis before the future fails with SendError."""
ENV_MAX_PAYLOAD: Final = "PRODUCER_MAX_PAYLOAD_BYTES"
"""The largest JSON arguments a client sends; bigger ones are refused at submit."""

DEFAULT_WATCHDOG_SECONDS: Final = 5.0
DEFAULT_OUTAGE_LIMIT_SECONDS: Final = 60.0
DEFAULT_CONNECT_TIMEOUT_SECONDS: Final = 5.0
DEFAULT_SEND_TIMEOUT_SECONDS: Final = 10.0
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
MAX_SECONDS: Final = 24 * 3600.0
"""Timeouts longer than a day are typos; far longer ones overflow the waits that use them."""
MAX_PAYLOAD_BYTES: Final = 512 * 1024 * 1024
"""Redis keeps at most 512 MiB in one value, so a larger limit could never be reached."""


@dataclass(frozen=True)
class ClientSettings:
    redis_url: str | None = None
    """Where this client connects; None: the app's ``broker_url`` and ``result_backend``."""
    queue: str | None = None
    """Where its tasks go; None: the app's routing (``task_routes``, ``task_default_queue``)."""
    allowlist: Allowlist | None = None
    """The plain functions the workers admit, checked at submit so refusals come early; None: the app's."""
    result_ttl: int | None = None
    """Lifetime of claims and of a queued message; None: the app's ``result_expires``."""
    watchdog_seconds: float = DEFAULT_WATCHDOG_SECONDS
    """How often running tasks' workers are checked for a heartbeat (a liveness probe, not result polling)."""
    outage_limit_seconds: float = DEFAULT_OUTAGE_LIMIT_SECONDS
    """How long Redis may stay unreachable before outstanding futures fail with RedisUnavailableError."""
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
    """How long the executor waits for Redis when it starts before raising ConnectionError."""
    send_timeout_seconds: float = DEFAULT_SEND_TIMEOUT_SECONDS
    """How long a send keeps retrying an unreachable Redis before its futures fail with SendError."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    """The largest JSON-encoded arguments ``submit`` accepts; bigger ones are refused before sending."""
    sentinel_master: str | None = None
    """With a ``sentinel://`` ``redis_url``: the master's name the sentinels monitor (None:
    ``REDIS_SENTINEL_MASTER``)."""
    sentinel_password: str | None = field(default=None, repr=False)
    """The sentinels' own password, if they have one; None: ``REDIS_SENTINEL_PASSWORD`` (or none)."""

    def __post_init__(self) -> None:
        if self.redis_url is not None:
            parse_redis_url(self.redis_url, "redis_url")
        if self.queue is not None:
            parse_queue(self.queue, "queue")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, redis_url: str | None = None,
                 queue: str | None = None) -> ClientSettings:
        """The client's bounds from ``PRODUCER_*`` variables, with ``redis_url`` and ``queue`` as given.

        A bad value is a :class:`SettingsError` naming the argument or the variable it came from.
        """
        source = os.environ if env is None else env
        return cls(
            redis_url=redis_url,
            queue=queue,
            connect_timeout_seconds=positive_seconds(source, ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT_SECONDS),
            send_timeout_seconds=positive_seconds(source, ENV_SEND_TIMEOUT, DEFAULT_SEND_TIMEOUT_SECONDS),
            max_payload_bytes=positive_bytes(source, ENV_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD_BYTES),
        )

    def standalone(self, env: Mapping[str, str] | None = None) -> ClientSettings:
        """These settings with what an app would have said filled in from the environment: ``REDIS_URL`` (and,
        for a ``sentinel://`` one, ``REDIS_SENTINEL_MASTER`` and ``REDIS_SENTINEL_PASSWORD``),
        ``PRODUCER_QUEUE``, ``WORKER_ALLOWLIST`` and ``RESULT_TTL_SECONDS`` (values given here win)."""
        source = os.environ if env is None else env
        url = self.redis_url or source.get(ENV_REDIS_URL, DEFAULT_REDIS_URL)
        master = self.sentinel_master or source.get(ENV_SENTINEL_MASTER)
        redis_settings(url, master, what="redis_url" if self.redis_url else ENV_REDIS_URL,
                       what_master="sentinel_master" if self.sentinel_master else ENV_SENTINEL_MASTER)
        queue = self.queue if self.queue is not None else parse_queue(source.get(ENV_QUEUE, DEFAULT_QUEUE), ENV_QUEUE)
        return replace(self, redis_url=url, queue=queue, sentinel_master=master,
                       sentinel_password=self.sentinel_password or source.get(ENV_SENTINEL_PASSWORD),
                       allowlist=self.allowlist if self.allowlist is not None else allowlist_from(source),
                       result_ttl=self.result_ttl if self.result_ttl is not None else result_ttl_from(source))


def positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds in (0, a day] from ``env[name]``, or ``default`` when unset."""
    raw = env.get(name)
    if raw is None:
        return default
    problem = f"{name} must be a number of seconds > 0 and ≤ {MAX_SECONDS:.0f}, got {raw!r}"
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(problem) from None
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise SettingsError(problem)
    return value


def positive_bytes(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of bytes in [1, 512 MiB] from ``env[name]``, or ``default`` when unset."""
    raw = env.get(name)
    if raw is None:
        return default
    return parse_whole(raw, name, 1, MAX_PAYLOAD_BYTES, "bytes")
