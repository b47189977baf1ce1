"""Redis Sentinel: the settings that carry a master's name to kombu and Celery, and the check that they do.

kombu's sentinel transport and Celery's sentinel result backend already find the current master: every new
connection asks the sentinels, and a connection to a demoted (or dead) master fails and is made again. So the
library uses them as they are, with every client of its own made from the backend's factory or kombu's
channel (``celery_futures/protocol/backend.py``, ``celery_futures/client/connections.py``), and needs from an
app only what they need: a ``sentinel://`` URL (every sentinel, ``;``-separated) and the master's name in
``broker_transport_options`` and ``result_backend_transport_options``. Without the name kombu fails at its
first connection, deep in a worker's start, and Celery's backend at its first result; so it is asked for
where the setting enters, by name. What a failover can lose, and what the library does about it, is in
``celery_futures/protocol/replication.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from celery_futures.protocol.settings import (
    ENV_REDIS_URL,
    SettingsError,
    is_sentinel_url,
    parse_master_name,
    parse_redis_url,
)

ENV_SENTINEL_MASTER: Final = "REDIS_SENTINEL_MASTER"
"""With a ``sentinel://`` REDIS_URL: the name of the master the sentinels monitor (``sentinel monitor <name>``)."""
ENV_SENTINEL_PASSWORD: Final = "REDIS_SENTINEL_PASSWORD"
"""The sentinels' own password (their ``requirepass``), if they have one; the URL's password is the data nodes'."""

MASTER_OPTION: Final = "master_name"
"""The transport option kombu's sentinel transport and Celery's sentinel backend read the master's name from."""
SENTINEL_KWARGS: Final = "sentinel_kwargs"
"""The transport option with the connection settings for the sentinels themselves (redis-py's ``Sentinel``)."""
SENTINEL_SOCKET_SECONDS: Final = 5.0
"""Celery passes no timeout to the sentinels unless told: a sentinel that hangs would hang every reconnect."""

TRANSPORT_OPTIONS: Final = {"broker_url": "broker_transport_options",
                            "result_backend": "result_backend_transport_options"}
"""Each URL setting of a Celery app, and the transport options that must name its master when it is Sentinel."""


def sentinel_options(master: str, password: str | None = None) -> dict[str, Any]:
    """The transport options for a master ``master`` behind sentinels that want ``password`` (if any)."""
    sentinels: dict[str, Any] = {"socket_timeout": SENTINEL_SOCKET_SECONDS,
                                 "socket_connect_timeout": SENTINEL_SOCKET_SECONDS}
    if password:
        sentinels["password"] = password
    return {MASTER_OPTION: master, SENTINEL_KWARGS: sentinels}


def redis_settings(url: str, master: str | None = None, sentinel_password: str | None = None, *,
                   what: str = ENV_REDIS_URL, what_master: str = ENV_SENTINEL_MASTER) -> dict[str, Any]:
    """The Celery settings that put the broker and the result backend on ``url``: for a ``sentinel://`` URL,
    with the master's name in both transport options. ``what`` and ``what_master`` name where the URL and the
    name came from, for the :class:`SettingsError` a missing or malformed one raises."""
    parse_redis_url(url, what)
    settings: dict[str, Any] = {"broker_url": url, "result_backend": url}
    if not is_sentinel_url(url):
        return settings
    if not master:
        raise SettingsError(f"{what_master} must name the master the sentinels monitor (their 'sentinel monitor "
                            f"<name> ...'), since {what} is a sentinel:// URL")
    options = sentinel_options(parse_master_name(master, what_master), sentinel_password)
    return {**settings, **{key: dict(options) for key in TRANSPORT_OPTIONS.values()}}


def sentinel_problems(conf: Mapping[str, Any]) -> list[str]:
    """What a Celery configuration lacks for its Sentinel URLs, one sentence per setting."""
    problems = []
    for url_key, options_key in TRANSPORT_OPTIONS.items():
        options = conf.get(options_key) or {}
        if is_sentinel_url(str(conf.get(url_key) or "")) and not options.get(MASTER_OPTION):
            problems.append(f"{options_key} must name the master the sentinels monitor "
                            f"({{'{MASTER_OPTION}': '<name>'}}), since {url_key} is a sentinel:// URL")
    return problems


def check_sentinel_settings(conf: Mapping[str, Any]) -> None:
    """Raise :class:`SettingsError` naming every Sentinel URL of ``conf`` whose master is not named."""
    problems = sentinel_problems(conf)
    if problems:
        raise SettingsError("; ".join(problems))
