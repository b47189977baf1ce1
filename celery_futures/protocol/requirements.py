"""What an app's configuration must say for the protocol to hold, checked by both sides.

A worker checks it when it starts (its bootstep), an executor when it is given an installed app: a setting
the app chose against the protocol is refused there, naming the setting, instead of a future that lies
later. ``install(app)`` sets these where the app says nothing (``celery_futures/worker/config.py``).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from celery_futures.protocol.backend import NotRedisError, redis_backend
from celery_futures.protocol.sentinel import sentinel_problems
from celery_futures.protocol.settings import REDIS_SCHEMES, SENTINEL_SCHEME, URL_SEPARATOR, SettingsError

JSON_ONLY: Final[dict[str, Any]] = {
    "task_serializer": "json",
    "result_serializer": "json",
    "event_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
}
REQUIRED: Final[dict[str, Any]] = {**JSON_ONLY, "result_backend_always_retry": True}
"""JSON only (the codec, and no pickle from whoever can write to Redis); results retried through a Redis
restart (a dropped result would leave its future running for ever)."""
JSON_NAMES: Final = frozenset({"json", "application/json"})


BROKER_SCHEMES: Final = (*REDIS_SCHEMES, SENTINEL_SCHEME)


def broker_scheme(conf: Any) -> str:
    """The broker URL's scheme (a ``sentinel://`` URL's first part names it for all)."""
    return urlsplit(str(conf.broker_url or "").split(URL_SEPARATOR, 1)[0]).scheme


def protocol_problems(app: Any) -> list[str]:
    """What in the app's configuration breaks the protocol, one sentence each."""
    conf = app.conf
    problems = [conflict(key, conf[key], wanted) for key, wanted in REQUIRED.items()
                if not satisfies(key, conf[key], wanted)]
    if broker_scheme(conf) not in BROKER_SCHEMES:
        problems.append(f"the broker must be Redis (broker_url = 'redis://...', 'rediss://...' or 'sentinel://...'), "
                        f"not {broker_scheme(conf) or 'unset'!r}")
    try:
        redis_backend(app)
    except NotRedisError as exc:
        problems.append(str(exc).removeprefix("celery_futures needs "))
    return problems + sentinel_problems(conf)


def satisfies(key: str, value: Any, wanted: Any) -> bool:
    if key.endswith("accept_content"):
        return bool(value) and set(value) <= JSON_NAMES
    return bool(value == wanted)


def conflict(key: str, value: Any, wanted: Any) -> str:
    return f"{key} is {value!r}, it must be {wanted!r}"


def check_protocol_settings(app: Any) -> None:
    """Raise :class:`SettingsError` naming every setting of ``app`` the protocol cannot work with."""
    problems = protocol_problems(app)
    if problems:
        raise SettingsError(f"celery_futures cannot work with app {app.main!r}: " + "; ".join(problems))
