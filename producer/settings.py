"""Producer settings: where Redis is, which queue to use, and what the workers' allowlist admits."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from worker import constants as c
from worker.allowlist import Allowlist
from worker.settings import parse_redis_url, result_ttl_from

DEFAULT_WATCHDOG_SECONDS = 5.0
DEFAULT_OUTAGE_LIMIT_SECONDS = 60.0


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

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, redis_url: str | None = None, queue: str | None = None
    ) -> ProducerSettings:
        """Read ``REDIS_URL``, ``PRODUCER_QUEUE``, ``WORKER_ALLOWLIST``, ``RESULT_TTL_SECONDS``; args win."""
        source = os.environ if env is None else env
        url = redis_url or source.get(c.ENV_REDIS_URL, c.DEFAULT_REDIS_URL)
        parse_redis_url(url)
        return cls(
            redis_url=url,
            queue=queue or source.get(c.ENV_PRODUCER_QUEUE, c.DEFAULT_QUEUE),
            allowlist=Allowlist.parse(source.get(c.ENV_ALLOWLIST)),
            result_ttl=result_ttl_from(source),
        )
