"""Worker settings: one frozen dataclass, read from the environment, validated where it enters.

Flags override environment variables, which override defaults; every bad value fails here with a message
that names the setting and says what is allowed, so nothing downstream has to re-check it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from worker import constants as c
from worker.allowlist import Allowlist
from worker.pools import DEFAULT_POOL, PoolSpec, UnknownPoolError, get_pool

LOGLEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting with a value we refuse; the message says which one and what is allowed."""


@dataclass(frozen=True)
class RedisAddress:
    """Where a Redis URL points, for messages that must never show the password."""

    host: str
    port: int
    db: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Check a ``redis://`` or ``rediss://`` URL and return its address, or raise :class:`SettingsError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SettingsError(f"{c.ENV_REDIS_URL} must start with redis:// or rediss://, got {redact(url)!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise SettingsError(f"{c.ENV_REDIS_URL} has a bad port: {redact(url)!r}") from None
    path = parts.path.lstrip("/") or "0"
    if not path.isdigit():
        raise SettingsError(f"{c.ENV_REDIS_URL} database must be a number, got {path!r}")
    return RedisAddress(host=parts.hostname or "127.0.0.1", port=port, db=int(path))


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_concurrency(raw: str | int, pool: PoolSpec) -> int:
    """A positive pool size; solo accepts only 1 because it runs one task at a time whatever it is told."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"concurrency must be a positive integer, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"concurrency must be a positive integer, got {raw!r}")
    if pool.fixed_concurrency and value != pool.default_concurrency:
        raise SettingsError(
            f"the {pool.name} pool always runs {pool.default_concurrency} task at a time; "
            f"concurrency {value} is not possible (omit it or use another pool)"
        )
    return value


def parse_non_negative(raw: str | int, what: str) -> int:
    """An integer ≥ 0 for counters such as connect attempts (0 meaning "for ever")."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{what} must be a whole number ≥ 0, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{what} must be a whole number ≥ 0, got {raw!r}")
    return value


def parse_result_ttl(raw: str | int) -> int:
    """Seconds ≥ 1: results, claims and message expiry all use it, and Redis refuses ``EX 0``."""
    value = parse_non_negative(raw, c.ENV_RESULT_TTL)
    if value < 1:
        raise SettingsError(f"{c.ENV_RESULT_TTL} must be at least 1 second, got {raw!r}")
    return value


def result_ttl_from(env: Mapping[str, str]) -> int:
    return parse_result_ttl(env.get(c.ENV_RESULT_TTL, str(c.DEFAULT_RESULT_TTL)))


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker process needs to know, resolved once before Celery starts."""

    redis_url: str
    pool: PoolSpec
    concurrency: int
    name: str
    queues: tuple[str, ...]
    loglevel: str
    allowlist: Allowlist
    connect_attempts: int
    result_ttl: int

    @property
    def redis_address(self) -> RedisAddress:
        return parse_redis_url(self.redis_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | int | None) -> WorkerSettings:
        """Build settings from ``env`` (default ``os.environ``); non-None ``overrides`` (flags) win."""
        source = dict(os.environ if env is None else env)

        def pick(key: str, env_name: str, default: str) -> str:
            value = overrides.get(key)
            return str(value) if value is not None else source.get(env_name, default)

        try:
            pool = get_pool(pick("pool", c.ENV_POOL, DEFAULT_POOL))
        except UnknownPoolError as exc:
            raise SettingsError(str(exc)) from None
        redis_url = pick("redis_url", c.ENV_REDIS_URL, c.DEFAULT_REDIS_URL)
        parse_redis_url(redis_url)
        loglevel = pick("loglevel", c.ENV_LOGLEVEL, "INFO").upper()
        if loglevel not in LOGLEVELS:
            raise SettingsError(f"log level must be one of {', '.join(LOGLEVELS)}, got {loglevel!r}")
        queues = tuple(q.strip() for q in pick("queues", c.ENV_QUEUES, c.DEFAULT_QUEUE).split(",") if q.strip())
        if not queues:
            raise SettingsError("at least one queue is needed")
        return cls(
            redis_url=redis_url,
            pool=pool,
            concurrency=parse_concurrency(pick("concurrency", c.ENV_CONCURRENCY, str(pool.default_concurrency)), pool),
            name=pick("name", c.ENV_NAME, f"{pool.name}@{socket.gethostname()}"),
            queues=queues,
            loglevel=loglevel,
            allowlist=Allowlist.parse(source.get(c.ENV_ALLOWLIST)),
            connect_attempts=parse_non_negative(
                pick("connect_attempts", c.ENV_CONNECT_ATTEMPTS, "0"), "connect attempts"
            ),
            result_ttl=result_ttl_from(source),
        )
