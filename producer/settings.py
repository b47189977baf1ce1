"""Producer settings: where Redis is, which queue to use, what the workers' allowlist admits, and bounds.

Every value is checked where it enters (``from_env``), with a message naming the variable and what it allows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from worker import constants as c
from worker.allowlist import Allowlist
from worker.settings import (
    SettingsError,
    allowlist_from,
    parse_queue,
    parse_redis_url,
    parse_whole,
    result_ttl_from,
)

DEFAULT_WATCHDOG_SECONDS = 5.0
DEFAULT_OUTAGE_LIMIT_SECONDS = 60.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_SEND_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_SECONDS = 24 * 3600.0
"""Timeouts longer than a day are typos; far longer ones overflow the waits that use them."""
MAX_PAYLOAD_BYTES = 512 * 1024 * 1024
"""Redis keeps at most 512 MiB in one value, so a larger limit could never be reached."""


@dataclass(frozen=True)
class ProducerSettings:
    redis_url: str
    queue: str
    allowlist: Allowlist
    """The workers' allowlist (same ``WORKER_ALLOWLIST``), checked at submit so refusals come early."""
    result_ttl: int
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

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, redis_url: str | None = None, queue: str | None = None
    ) -> ProducerSettings:
        """Read ``REDIS_URL``, ``PRODUCER_*``, ``WORKER_ALLOWLIST``, ``RESULT_TTL_SECONDS``; args win.

        A bad value is a :class:`SettingsError` naming the argument or the variable it came from.
        """
        source = os.environ if env is None else env
        url = redis_url or source.get(c.ENV_REDIS_URL, c.DEFAULT_REDIS_URL)
        parse_redis_url(url, "redis_url" if redis_url else c.ENV_REDIS_URL)
        return cls(
            redis_url=url,
            queue=parse_queue(queue, "queue") if queue is not None else parse_queue(
                source.get(c.ENV_PRODUCER_QUEUE, c.DEFAULT_QUEUE), c.ENV_PRODUCER_QUEUE),
            allowlist=allowlist_from(source),
            result_ttl=result_ttl_from(source),
            connect_timeout_seconds=positive_seconds(source, c.ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT_SECONDS),
            send_timeout_seconds=positive_seconds(source, c.ENV_SEND_TIMEOUT, DEFAULT_SEND_TIMEOUT_SECONDS),
            max_payload_bytes=positive_bytes(source, c.ENV_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD_BYTES),
        )


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
