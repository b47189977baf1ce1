"""The Redis behind a Celery app's result backend: where claims, flags and heartbeats live.

The protocol keeps every key of its own next to the results they guard, in the result backend's Redis,
so a claim and the STARTED record it announces can be written by one script. Clients of our own are built
with the backend's own factory, so its URL, password, TLS options (and, for a Sentinel backend, the
current master) are honoured as Celery honours them; only the timeouts are ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from celery.backends.redis import RedisBackend, SentinelBackend

from celery_futures.protocol.settings import SettingsError

if TYPE_CHECKING:
    from redis import Redis


class NotRedisError(SettingsError):
    """The protocol needs Redis as the result backend (and broker); the message names what the app has."""


def redis_backend(app: Any) -> RedisBackend:
    """The app's result backend, or :class:`NotRedisError` naming the one it has."""
    backend = app.backend
    if not isinstance(backend, RedisBackend):
        raise NotRedisError(f"celery_futures needs a Redis result backend (result_backend = 'redis://...'); "
                            f"app {app.main!r} has {type(backend).__name__}")
    return backend


def is_replicated(app: Any) -> bool:
    """Whether the backend's Redis fails over (Sentinel): then a write can be lost to a promotion, and the
    writes a future's truth rests on are confirmed by a replica first (``celery_futures/protocol/replication.py``)."""
    return isinstance(redis_backend(app), SentinelBackend)


def backend_address(app: Any) -> str:
    """Where the backend's Redis is, for messages (never the password): ``host:port/db``, or for Sentinel
    ``<master> via sentinels host:port,.../db``."""
    backend: Any = redis_backend(app)
    params = backend.connparams
    if "hosts" in params:  # Celery's SentinelBackend keeps every sentinel here
        sentinels = ",".join(f"{h.get('host')}:{h.get('port')}" for h in params["hosts"])
        master = backend._transport_options.get("master_name")
        return f"{master} via sentinels {sentinels}/{params.get('db', 0)}"
    return f"{params.get('host', 'localhost')}:{params.get('port', 6379)}/{params.get('db', 0)}"


def backend_redis(app: Any) -> Redis:
    """The backend's own shared client (what Celery stores results with)."""
    return cast("Redis", redis_backend(app).client)


def new_backend_redis(app: Any, **overrides: Any) -> Redis:
    """A new client to the backend's Redis with the backend's connection settings, ``overrides`` on top.

    ``_create_client`` is the backend's own factory (private in name, stable through Celery 5): going around
    it would mean parsing the backend URL a second time, differently.
    """
    backend: Any = redis_backend(app)
    params = {**backend.connparams, **overrides}
    return cast("Redis", backend._create_client(**params))
