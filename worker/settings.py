"""Our demo worker's settings: one frozen dataclass, read from the environment, validated where it enters.

Flags override environment variables, which override defaults; every bad value fails here with a message
that names the input it came from (the flag or the variable) and says what is allowed, so nothing
downstream has to re-check it. The parsers shared with the client live in ``celery_futures/protocol/settings.py``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from celery_futures.protocol.allowlist import Allowlist
from celery_futures.protocol.pools import DEFAULT_POOL, PoolSpec, UnknownPoolError, get_pool
from celery_futures.protocol.sentinel import ENV_SENTINEL_MASTER, ENV_SENTINEL_PASSWORD, redis_settings
from celery_futures.protocol.settings import (
    DEFAULT_EVENT_FLUSH_SECONDS,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_QUEUE,
    DEFAULT_REDIS_URL,
    RedisAddress,
    SentinelAddress,
    SettingsError,
    max_message_bytes_from,
    parse_allowlist,
    parse_event_flush_seconds,
    parse_queues,
    parse_redis_url,
    parse_whole,
    result_ttl_from,
)
from worker import constants as c

__all__ = ["SettingsError", "WorkerSettings", "allowlist_from", "event_flush_from"]

LOGLEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
NODE_NAME = re.compile(r"[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+")
"""Celery renames anything else (``w1`` becomes ``celery@w1``, ``%h`` is expanded), and then ``--check``
and Flower would look for a name that does not exist."""


def parse_pool(raw: str, what: str) -> PoolSpec:
    try:
        return get_pool(raw)
    except UnknownPoolError as exc:
        raise SettingsError(f"{what}: {exc}") from None


def parse_concurrency(raw: str | int, what: str, pool: PoolSpec) -> int:
    """A positive pool size; solo accepts only 1 because it runs one task at a time whatever it is told."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{what} must be a positive integer, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{what} must be a positive integer, got {raw!r}")
    if pool.fixed_concurrency and value != pool.default_concurrency:
        raise SettingsError(
            f"{what}: the {pool.name} pool always runs {pool.default_concurrency} task at a time; "
            f"concurrency {value} is not possible (omit it or use another pool)"
        )
    return value


def parse_loglevel(raw: str, what: str) -> str:
    level = raw.strip().upper()
    if level not in LOGLEVELS:
        raise SettingsError(f"{what} must be one of {', '.join(LOGLEVELS)}, got {raw!r}")
    return level


def parse_node_name(raw: str, what: str) -> str:
    if not NODE_NAME.fullmatch(raw):
        raise SettingsError(f"{what} must be name@host, each of letters, digits, '_', '.' and '-', got {raw!r} "
                            "(Celery would rename anything else, and --check would ping the wrong name)")
    return raw


def parse_non_negative(raw: str | int, what: str) -> int:
    """An integer ≥ 0 for counters such as connect attempts (0 meaning "for ever")."""
    return parse_whole(raw, what, 0)


def allowlist_from(env: Mapping[str, str]) -> Allowlist:
    """``WORKER_ALLOWLIST``, or our demo's default (the library's plus ``worker.functions.*``) when unset."""
    return parse_allowlist(env.get(c.ENV_ALLOWLIST, ",".join(c.DEMO_ALLOWLIST)), c.ENV_ALLOWLIST)


def event_flush_from(env: Mapping[str, str]) -> float:
    """``WORKER_EVENT_FLUSH_SECONDS``, or the library's default when unset."""
    return parse_event_flush_seconds(env.get(c.ENV_EVENT_FLUSH, DEFAULT_EVENT_FLUSH_SECONDS), c.ENV_EVENT_FLUSH)


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
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    event_flush_seconds: float = DEFAULT_EVENT_FLUSH_SECONDS
    sentinel_master: str | None = None
    """With a ``sentinel://`` URL, the master's name (``REDIS_SENTINEL_MASTER``)."""
    sentinel_password: str | None = field(default=None, repr=False)
    """The sentinels' own password (``REDIS_SENTINEL_PASSWORD``), if they have one."""

    @property
    def redis_address(self) -> RedisAddress | SentinelAddress | str:
        """Where Redis is, for messages (never the password): ``host:port/db``, or for Sentinel the master's
        name and its sentinels."""
        address = parse_redis_url(self.redis_url)
        return f"{self.sentinel_master} via {address}" if isinstance(address, SentinelAddress) else address

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | int | None) -> WorkerSettings:
        """Build settings from ``env`` (default ``os.environ``); non-None ``overrides`` (flags) win."""
        pick = Picker(dict(os.environ if env is None else env), overrides)
        pool = parse_pool(*pick("pool", c.ENV_POOL, DEFAULT_POOL))
        redis_url, url_from = pick("redis_url", c.ENV_REDIS_URL, DEFAULT_REDIS_URL)
        master = pick.env.get(ENV_SENTINEL_MASTER)
        redis_settings(redis_url, master, what=url_from)  # a sentinel:// URL without its master: named here
        given_name = pick.given("name", c.ENV_NAME)
        return cls(
            redis_url=redis_url,
            pool=pool,
            concurrency=parse_concurrency(*pick("concurrency", c.ENV_CONCURRENCY, str(pool.default_concurrency)),
                                          pool),
            name=parse_node_name(*given_name) if given_name else f"{pool.name}@{socket.gethostname()}",
            queues=parse_queues(*pick("queues", c.ENV_QUEUES, DEFAULT_QUEUE)),
            loglevel=parse_loglevel(*pick("loglevel", c.ENV_LOGLEVEL, "INFO")),
            allowlist=allowlist_from(pick.env),
            connect_attempts=parse_non_negative(*pick("connect_attempts", c.ENV_CONNECT_ATTEMPTS, "0")),
            result_ttl=result_ttl_from(pick.env),
            max_message_bytes=max_message_bytes_from(pick.env),
            event_flush_seconds=event_flush_from(pick.env),
            sentinel_master=master,
            sentinel_password=pick.env.get(ENV_SENTINEL_PASSWORD),
        )


@dataclass(frozen=True)
class Picker:
    """A setting's raw value and the input it came from: the flag if given, else the variable if set."""

    env: Mapping[str, str]
    flags: Mapping[str, str | int | None]

    def given(self, key: str, env_name: str) -> tuple[str, str] | None:
        """``(raw, where)`` with ``where`` the ``--flag`` or the variable, or None if neither was given."""
        flag = self.flags.get(key)
        if flag is not None:
            return str(flag), f"--{key.replace('_', '-')}"
        if env_name in self.env:
            return self.env[env_name], env_name
        return None

    def __call__(self, key: str, env_name: str, default: str) -> tuple[str, str]:
        """``(raw, where)``, the default (named after its variable) when neither was given."""
        return self.given(key, env_name) or (default, env_name)
