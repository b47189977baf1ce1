"""Worker settings: one frozen dataclass, read from the environment, validated where it enters.

Flags override environment variables, which override defaults; every bad value fails here with a message
that names the input it came from (the flag or the variable) and says what is allowed, so nothing
downstream has to re-check it. The producer reuses the parsers for the settings both sides share.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from worker import constants as c
from worker.allowlist import Allowlist
from worker.pools import DEFAULT_POOL, PoolSpec, UnknownPoolError, get_pool

LOGLEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
"""Queue names become Redis keys and Celery command-line values: no spaces, commas or odd characters."""
NODE_NAME = re.compile(r"[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+")
"""Celery renames anything else (``w1`` becomes ``celery@w1``, ``%h`` is expanded), and then ``--check``
and Flower would look for a name that does not exist."""
MAX_RESULT_TTL = 365 * 24 * 3600
"""A year: message expiry is ``now + ttl`` as a datetime, which overflows long before Redis would object."""


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


def parse_redis_url(url: str, what: str = c.ENV_REDIS_URL) -> RedisAddress:
    """Check a ``redis://`` or ``rediss://`` URL and return its address, or raise :class:`SettingsError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SettingsError(f"{what} must start with redis:// or rediss://, got {redact(url)!r}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise SettingsError(f"{what} has a bad port (1-65535): {redact(url)!r}")
    path = parts.path.lstrip("/") or "0"
    if not path.isdigit():
        raise SettingsError(f"{what} database must be a number, got {path!r}")
    return RedisAddress(host=parts.hostname or "127.0.0.1", port=port or 6379, db=int(path))


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


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


def parse_queue(raw: str, what: str) -> str:
    """One queue name: letters, digits, ``_ . : -``."""
    if not QUEUE_NAME.fullmatch(raw):
        raise SettingsError(f"{what} must be a queue name of letters, digits, '_', '.', ':' and '-', got {raw!r}")
    return raw


def parse_queues(raw: str, what: str) -> tuple[str, ...]:
    """Comma-separated queue names (spaces around commas are fine); at least one, none empty."""
    names = [name.strip() for name in raw.split(",")]
    if not any(names):
        raise SettingsError(f"{what} names no queue; give at least one (comma-separated), got {raw!r}")
    for name in names:
        if not QUEUE_NAME.fullmatch(name):
            raise SettingsError(f"{what} must be comma-separated queue names of letters, digits, '_', '.', ':' "
                                f"and '-'; {name!r} is not one (in {raw!r})")
    return tuple(names)


def parse_node_name(raw: str, what: str) -> str:
    if not NODE_NAME.fullmatch(raw):
        raise SettingsError(f"{what} must be name@host, each of letters, digits, '_', '.' and '-', got {raw!r} "
                            "(Celery would rename anything else, and --check would ping the wrong name)")
    return raw


def parse_whole(raw: str | int, what: str, low: int, high: int | None = None, unit: str = "") -> int:
    """A whole number from ``low`` to ``high`` (no upper bound if None), or a SettingsError stating the range."""
    allowed = f"≥ {low}" if high is None else f"from {low} to {high}"
    rule = f"{what} must be a whole number{' of ' + unit if unit else ''} {allowed}, got {raw!r}"
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(rule) from None
    if value < low or (high is not None and value > high):
        raise SettingsError(rule)
    return value


def parse_non_negative(raw: str | int, what: str) -> int:
    """An integer ≥ 0 for counters such as connect attempts (0 meaning "for ever")."""
    return parse_whole(raw, what, 0)


def parse_result_ttl(raw: str | int) -> int:
    """Seconds from 1 (Redis refuses ``EX 0``) to :data:`MAX_RESULT_TTL`: results, claims and message expiry."""
    return parse_whole(raw, c.ENV_RESULT_TTL, 1, MAX_RESULT_TTL, "seconds")


def result_ttl_from(env: Mapping[str, str]) -> int:
    return parse_result_ttl(env.get(c.ENV_RESULT_TTL, str(c.DEFAULT_RESULT_TTL)))


def allowlist_from(env: Mapping[str, str]) -> Allowlist:
    """``WORKER_ALLOWLIST``, or the safe default when unset; a malformed pattern is a SettingsError."""
    try:
        return Allowlist.parse(env.get(c.ENV_ALLOWLIST))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


MIN_MESSAGE_BYTES = 64 * 1024
"""A limit below this would refuse ordinary tasks (an envelope alone is 1-2 KB)."""


def parse_max_message_bytes(raw: str | int) -> int:
    """The worker's message size limit (``worker/message_guard.py``), at least :data:`MIN_MESSAGE_BYTES`."""
    return parse_whole(raw, c.ENV_MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, unit="bytes")


def max_message_bytes_from(env: Mapping[str, str]) -> int:
    return parse_max_message_bytes(env.get(c.ENV_MAX_MESSAGE_BYTES, str(c.DEFAULT_MAX_MESSAGE_BYTES)))


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
    max_message_bytes: int = c.DEFAULT_MAX_MESSAGE_BYTES

    @property
    def redis_address(self) -> RedisAddress:
        return parse_redis_url(self.redis_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str | int | None) -> WorkerSettings:
        """Build settings from ``env`` (default ``os.environ``); non-None ``overrides`` (flags) win."""
        pick = Picker(dict(os.environ if env is None else env), overrides)
        pool = parse_pool(*pick("pool", c.ENV_POOL, DEFAULT_POOL))
        redis_url, url_from = pick("redis_url", c.ENV_REDIS_URL, c.DEFAULT_REDIS_URL)
        parse_redis_url(redis_url, url_from)
        given_name = pick.given("name", c.ENV_NAME)
        return cls(
            redis_url=redis_url,
            pool=pool,
            concurrency=parse_concurrency(*pick("concurrency", c.ENV_CONCURRENCY, str(pool.default_concurrency)),
                                          pool),
            name=parse_node_name(*given_name) if given_name else f"{pool.name}@{socket.gethostname()}",
            queues=parse_queues(*pick("queues", c.ENV_QUEUES, c.DEFAULT_QUEUE)),
            loglevel=parse_loglevel(*pick("loglevel", c.ENV_LOGLEVEL, "INFO")),
            allowlist=allowlist_from(pick.env),
            connect_attempts=parse_non_negative(*pick("connect_attempts", c.ENV_CONNECT_ATTEMPTS, "0")),
            result_ttl=result_ttl_from(pick.env),
            max_message_bytes=max_message_bytes_from(pick.env),
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
