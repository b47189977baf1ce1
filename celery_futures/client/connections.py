"""Where an executor connects: its app's broker and backend, on connections of its own.

The executor never changes the user's app: it opens its own Redis clients and its own broker connection
with the client's timeouts (no Redis command of the client blocks on purpose, so a Redis that hangs is an
error after :data:`SOCKET_TIMEOUT_SECONDS`, not a hang). Made from the app's settings, they honour its
URL, password and TLS options as Celery does. Control commands (``interrupt()``'s revoke) go through the
app's own ``app.control``, as Celery sends them. An executor given no app gets :func:`standalone_app`:
the protocol's settings on one Redis URL, and no tasks.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery

from celery_futures.client.settings import ClientSettings
from celery_futures.protocol.backend import new_backend_redis, redis_backend
from celery_futures.protocol.redis_check import client_problem

SOCKET_TIMEOUT_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 5.0


def standalone_app(settings: ClientSettings) -> Celery:
    """A bare app for an executor given none (``settings`` already :meth:`~ClientSettings.standalone`)."""
    app = Celery("celery_futures", set_as_current=False)
    app.config_from_object({
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
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
        params = redis_backend(app).connparams  # type: ignore[attr-defined]
        self.address = f"{params.get('host', 'localhost')}:{params.get('port', 6379)}/{params.get('db', 0)}"
        """``host:port/db`` of the backend, for messages (never the password)."""
        self.redis = self.new_redis(socket_timeout=SOCKET_TIMEOUT_SECONDS)
        """Claims, flags, stored states and heartbeats: the backend's Redis."""
        self.broker_redis = self.redis if app.conf.broker_url == app.conf.result_backend else \
            redis.Redis.from_url(app.conf.broker_url, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                                 socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
        """Queues and kombu's ``unacked`` hash, where the watchdog looks for messages: the broker's Redis."""
        self.broker = app.connection_for_write(transport_options={
            "socket_timeout": SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS})
        """The broker connection the executor's sends are made from (its pool clones it)."""

    def new_redis(self, **options: Any) -> redis.Redis:
        """A new client to the backend's Redis with ``options`` (timeouts, a client name)."""
        options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT_SECONDS)
        return new_backend_redis(self._app, **options)

    def problem(self, timeout: float) -> str | None:
        """None if Redis answers within ``timeout`` seconds, else why not in a few words."""
        client = self.new_redis(socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return client_problem(client)
        finally:
            client.close()

    def close(self) -> None:
        self.broker.release()
        if self.broker_redis is not self.redis:
            self.broker_redis.close()
        self.redis.close()
