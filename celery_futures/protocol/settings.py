"""Settings both sides read, and the parsers that refuse a bad value where it enters.

Each parser raises :class:`SettingsError` with a message that names the input (a flag, a variable, an
argument) and says what is allowed, so nothing downstream has to check again. The client, the worker
extension and our demo apps all use these, so one input is judged by one rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from celery_futures.protocol.allowlist import Allowlist

# -- environment variables shared by the client and our demo worker (documented in docs/configuration.md) --
ENV_REDIS_URL: Final = "REDIS_URL"
"""Broker and result backend URL, with the password: ``redis://:secret@127.0.0.1:6379/0``, or every sentinel
of a Redis Sentinel group, ``;``-separated: ``sentinel://:secret@s1:26379;sentinel://:secret@s2:26379/0``."""
ENV_ALLOWLIST: Final = "WORKER_ALLOWLIST"
"""Comma-separated patterns of plain functions the generic runner may call (``math.*``)."""
ENV_RESULT_TTL: Final = "RESULT_TTL_SECONDS"
"""How long results, claims and interrupt flags stay in Redis."""
ENV_MAX_MESSAGE_BYTES: Final = "WORKER_MAX_MESSAGE_BYTES"
"""The largest message (as stored in Redis) a worker accepts; bigger ones are logged and discarded."""

# -- settings in a Celery app's configuration that the library reads -------------------------------------
ALLOWLIST_SETTING: Final = "celery_futures_allowlist"
"""``app.conf.celery_futures_allowlist``: the plain functions the app's runner may call (patterns, a list or
a comma-separated string); both the workers and the client read it from the app's configuration."""
MAX_BYTES_OPTION: Final = "max_message_bytes"
"""The ``broker_transport_options`` key that carries the message size limit to the guarded transport."""
EVENT_FLUSH_SETTING: Final = "celery_futures_event_flush_seconds"
"""``app.conf.celery_futures_event_flush_seconds``: how long a worker's task events wait to leave in one
batch (``celery_futures/worker/events.py``); 0 leaves Celery's own flushing."""

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE: Final = "celery"
DEFAULT_RESULT_TTL: Final = 24 * 3600
DEFAULT_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
"""Room for the client's largest arguments (1 MiB of JSON, 1.33x once base64-encoded) and the envelope."""
MIN_MESSAGE_BYTES: Final = 64 * 1024
"""A limit below this would refuse ordinary tasks (an envelope alone is 1-2 KB)."""
DEFAULT_EVENT_FLUSH_SECONDS: Final = 0.01
MAX_EVENT_FLUSH_SECONDS: Final = 5.0
"""A monitor that learns of a task seconds late is no monitor; more is a mistake, refused at start."""
MAX_RESULT_TTL: Final = 365 * 24 * 3600
"""A year: message expiry is ``now + ttl`` as a datetime, which overflows long before Redis would object."""
QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]+")
"""Queue names become Redis keys and Celery command-line values: no spaces, commas or odd characters."""
REDIS_SCHEMES: Final = ("redis", "rediss")
SENTINEL_SCHEME: Final = "sentinel"
"""kombu's and Celery's scheme for a Redis found through its sentinels (the URL names sentinels, not Redis)."""
URL_SEPARATOR: Final = ";"
"""Between the sentinels of one ``sentinel://`` URL, as kombu and Celery split it."""
MASTER_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]+")
"""A Sentinel master's name (``sentinel monitor <name> ...``): no spaces, as sentinels' own config takes it."""


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


@dataclass(frozen=True)
class SentinelAddress:
    """Where a ``sentinel://`` URL points: the sentinels to ask for the master, and the database."""

    sentinels: tuple[tuple[str, int], ...]
    db: int

    def __str__(self) -> str:
        return f"sentinels {','.join(f'{host}:{port}' for host, port in self.sentinels)}/{self.db}"


def is_sentinel_url(url: str) -> bool:
    return urlsplit(url.split(URL_SEPARATOR, 1)[0]).scheme == SENTINEL_SCHEME


def parse_redis_url(url: str, what: str = ENV_REDIS_URL) -> RedisAddress | SentinelAddress:
    """Check a ``redis://``, ``rediss://`` or ``sentinel://`` URL and return its address, or raise
    :class:`SettingsError`. A ``sentinel://`` URL may list several sentinels, ``;``-separated."""
    if is_sentinel_url(url):
        return parse_sentinel_url(url, what)
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise SettingsError(f"{what} must start with redis://, rediss:// or sentinel://, got {redact(url)!r}")
    return RedisAddress(parts.hostname or "127.0.0.1", checked_port(url, what, 6379), checked_db(url, what))


def parse_sentinel_url(url: str, what: str) -> SentinelAddress:
    """Every ``;``-separated part must be ``sentinel://:secret@host:port/db`` (password and database optional).
    kombu and Celery take the database from the first part, so a later part naming another one is refused
    rather than ignored."""
    sentinels, db = [], None
    for part in url.split(URL_SEPARATOR):
        if urlsplit(part).scheme != SENTINEL_SCHEME:
            raise SettingsError(f"{what}: every part of a sentinel URL must start with sentinel://, got "
                                f"{redact(part)!r}")
        sentinels.append((urlsplit(part).hostname or "127.0.0.1", checked_port(part, what, 26379)))
        named = checked_db(part, what)
        if db is None:
            db = named
        elif urlsplit(part).path.strip("/") and named != db:
            raise SettingsError(f"{what}: the sentinels of one URL must name one database (the first part's, "
                                f"{db}), got {named} in {redact(part)!r}")
    return SentinelAddress(tuple(sentinels), db or 0)


def checked_port(url: str, what: str, default: int) -> int:
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise SettingsError(f"{what} has a bad port (1-65535): {redact(url)!r}")
    return port or default


def checked_db(url: str, what: str) -> int:
    path = urlsplit(url).path.lstrip("/") or "0"
    if not path.isdigit():
        raise SettingsError(f"{what} database must be a number, got {path!r}")
    return int(path)


def parse_master_name(raw: str, what: str) -> str:
    """A Sentinel master's name, as the sentinels' ``sentinel monitor`` line gives it."""
    if not MASTER_NAME.fullmatch(raw):
        raise SettingsError(f"{what} must be the master's name the sentinels monitor (letters, digits, "
                            f"'_', '.', ':' and '-'), got {raw!r}")
    return raw


def redact(url: str) -> str:
    """The URL with its passwords replaced by ``***`` (in every part of a sentinel URL), safe for logs."""
    if URL_SEPARATOR in url:
        return URL_SEPARATOR.join(redact(part) for part in url.split(URL_SEPARATOR))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


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


def parse_result_ttl(raw: str | int, what: str = ENV_RESULT_TTL) -> int:
    """Seconds from 1 (Redis refuses ``EX 0``) to :data:`MAX_RESULT_TTL`: results, claims and message expiry."""
    return parse_whole(raw, what, 1, MAX_RESULT_TTL, "seconds")


def result_ttl_from(env: Mapping[str, str]) -> int:
    return parse_result_ttl(env.get(ENV_RESULT_TTL, str(DEFAULT_RESULT_TTL)))


def parse_allowlist(raw: str | list[str] | tuple[str, ...] | None, what: str = ENV_ALLOWLIST) -> Allowlist:
    """Patterns as a comma-separated string or a sequence; None gives the safe default, ``""`` admits nothing."""
    try:
        return Allowlist.parse(raw if raw is None or isinstance(raw, str) else ",".join(raw), what)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def allowlist_from(env: Mapping[str, str]) -> Allowlist:
    """``WORKER_ALLOWLIST``, or the safe default when unset; a malformed pattern is a SettingsError."""
    return parse_allowlist(env.get(ENV_ALLOWLIST))


def parse_max_message_bytes(raw: str | int, what: str = ENV_MAX_MESSAGE_BYTES) -> int:
    """The worker's message size limit (``celery_futures/worker/message_guard.py``), at least 64 KiB."""
    return parse_whole(raw, what, MIN_MESSAGE_BYTES, unit="bytes")


def max_message_bytes_from(env: Mapping[str, str]) -> int:
    return parse_max_message_bytes(env.get(ENV_MAX_MESSAGE_BYTES, str(DEFAULT_MAX_MESSAGE_BYTES)))


def parse_event_flush_seconds(raw: object, what: str = EVENT_FLUSH_SETTING) -> float:
    """A task-event flush interval, from a setting or a variable's text: 0 (Celery's own flushing) to 5 s."""
    try:
        value = float(raw) if isinstance(raw, str | int | float) and not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_EVENT_FLUSH_SECONDS:
        raise SettingsError(f"{what} must be a number of seconds from 0 to {MAX_EVENT_FLUSH_SECONDS:g}, got {raw!r}")
    return value


def event_flush_seconds_of(conf: Mapping[str, object]) -> float:
    """An app's flush interval (its configuration, or the default), validated."""
    return parse_event_flush_seconds(conf.get(EVENT_FLUSH_SETTING, DEFAULT_EVENT_FLUSH_SECONDS))
