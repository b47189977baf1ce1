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
from worker.settings import SettingsError, parse_non_negative, parse_redis_url, result_ttl_from

DEFAULT_WATCHDOG_SECONDS = 5.0
DEFAULT_OUTAGE_LIMIT_SECONDS = 60.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_SEND_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024


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
        """Read ``REDIS_URL``, ``PRODUCER_*``, ``WORKER_ALLOWLIST``, ``RESULT_TTL_SECONDS``; args win."""
        source = os.environ if env is None else env
        url = redis_url or source.get(c.ENV_REDIS_URL, c.DEFAULT_REDIS_URL)
        parse_redis_url(url)
        return cls(
            redis_url=url,
            queue=queue or source.get(c.ENV_PRODUCER_QUEUE, c.DEFAULT_QUEUE),
            allowlist=Allowlist.parse(source.get(c.ENV_ALLOWLIST)),
            result_ttl=result_ttl_from(source),
            connect_timeout_seconds=positive_seconds(source, c.ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT_SECONDS),
            send_timeout_seconds=positive_seconds(source, c.ENV_SEND_TIMEOUT, DEFAULT_SEND_TIMEOUT_SECONDS),
            max_payload_bytes=positive_bytes(source, c.ENV_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD_BYTES),
        )


def positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A finite number of seconds > 0 from ``env[name]``, or ``default`` when unset."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds > 0, got {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


def positive_bytes(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of bytes ≥ 1 from ``env[name]``, or ``default`` when unset."""
    raw = env.get(name)
    if raw is None:
        return default
    value = parse_non_negative(raw, name)
    if value < 1:
        raise SettingsError(f"{name} must be a whole number of bytes ≥ 1, got {raw!r}")
    return value
