"""Where an executor connects: its app's broker and backend, on connections of its own.

The executor never changes the user's app: it opens its own Redis clients and its own broker connection
with the client's timeouts (no Redis command of the client blocks on purpose, so a Redis that hangs is an
error after :data:`SOCKET_TIMEOUT_SECONDS`, not a hang). Made by the backend's own factory and kombu's own
channel, never parsed from a URL here, they honour its URL, password and TLS options as Celery does, and,
behind Sentinel, follow the master through a failover as Celery's and kombu's own clients do. Control
commands (``interrupt()``'s revoke) go through the app's own ``app.control``, as Celery sends them. An
executor given no app gets :func:`standalone_app`: the protocol's settings on one Redis URL (or one Sentinel
group), and no tasks.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery

from celery_futures.client.settings import ClientSettings
from celery_futures.protocol.backend import backend_address, new_backend_redis
from celery_futures.protocol.redis_check import problem_once_loaded
from celery_futures.protocol.sentinel import MASTER_OPTION, redis_settings

SOCKET_TIMEOUT_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 5.0


def standalone_app(settings: ClientSettings) -> Celery:
    """A bare app for an executor given none (``settings`` already :meth:`~ClientSettings.standalone`)."""
    app = Celery("celery_futures", set_as_current=False)
    app.config_from_object({
        **redis_settings(str(settings.redis_url), settings.sentinel_master, settings.sentinel_password),
        "result_expires": settings.result_ttl,
        "task_default_queue": settings.queue,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
    })
    return app


class Connections:
    """The executor's own way to its Redis: commands, the listener's subscription, the broker."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self.address = backend_address(app)
        """Where the backend is, for messages (never the password)."""
        self.redis = self.new_redis(socket_timeout=SOCKET_TIMEOUT_SECONDS)
        """Claims, flags, stored states and heartbeats: the backend's Redis."""
        timeouts = {"socket_timeout": SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS}
        self.broker = app.connection_for_write(transport_options=timeouts)
        """The broker connection the executor's sends are made from (its pool clones it)."""
        self._broker_reader = None if same_server(app) else app.connection_for_read(transport_options=timeouts)
        self._broker_redis: redis.Redis | None = None

    def broker_redis(self) -> redis.Redis:
        """Queues and kombu's ``unacked`` hash, where the watchdog looks for messages: the broker's Redis. The
        backend's client when both are one server; else a client from kombu's own channel (made at first use,
        so a broker that is away does not hold up the executor's start)."""
        if self._broker_reader is None:
            return self.redis
        if self._broker_redis is None:
            channel: Any = self._broker_reader.default_channel  # kombu's Redis channel (or its Sentinel one)
            with channel.conn_or_acquire() as client:
                self._broker_redis = client
        return self._broker_redis

    def new_redis(self, **options: Any) -> redis.Redis:
        """A new client to the backend's Redis with ``options`` (timeouts, a client name)."""
        options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT_SECONDS)
        return new_backend_redis(self._app, **options)

    def problem(self, timeout: float) -> str | None:
        """None if Redis answers within ``timeout`` seconds (waiting while it loads its data), else why not in a
        few words."""
        client = self.new_redis(socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return problem_once_loaded(client, timeout)
        finally:
            client.close()

    def close(self) -> None:
        self.broker.release()
        if self._broker_redis is not None:
            self._broker_redis.close()
        if self._broker_reader is not None:
            self._broker_reader.release()
        self.redis.close()


def same_server(app: Celery) -> bool:
    """Whether broker and result backend are one Redis: the same URL and, behind Sentinel, the same master."""
    conf = app.conf
    masters = [(conf[key] or {}).get(MASTER_OPTION) for key in
               ("broker_transport_options", "result_backend_transport_options")]
    return bool(conf.broker_url == conf.result_backend and masters[0] == masters[1])
