"""The Celery app both the workers and the producer use, configured for what the product promises.

``python -m worker`` exports its resolved settings to the environment before Celery imports this module
(``celery -A worker.app``), so the worker's children and this module see the same configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from celery import Celery
from celery.backends.redis import RedisBackend

from worker import constants as c
from worker import wire  # noqa: F401  (registers the tuple type with kombu's JSON before any message)
from worker.message_guard import MAX_BYTES_OPTION, TRANSPORT
from worker.pools import DEFAULT_POOL, POOLS
from worker.settings import max_message_bytes_from, result_ttl_from

if TYPE_CHECKING:
    from redis import Redis


def celery_config(redis_url: str, result_ttl: int, default_queue: str, *, green: bool = False,
                  socket_timeout: float | None = None,
                  max_message_bytes: int = c.DEFAULT_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Celery settings, each with the reason we need it."""
    return {
        **timeouts(socket_timeout),
        "broker_transport_options": {
            **REDELIVERY, **socket_options(socket_timeout), MAX_BYTES_OPTION: max_message_bytes,
        },
        # Redis is both the broker and the result backend: one service to run, and the producer's
        # listener subscribes to the backend's pub/sub channels.
        "broker_url": redis_url,
        "result_backend": redis_url,
        # kombu's Redis transport with a guard: a message that is not JSON, not kombu's envelope, or bigger
        # than max_message_bytes is logged and discarded instead of stopping or restarting the consumer
        # (worker/message_guard.py says what Celery and kombu do without it).
        "broker_transport": TRANSPORT,
        # JSON only: pickle would let anyone who can write to Redis run code on workers and producers.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # STARTED is what makes future.running() true. Our ClaimedTask publishes it itself, after it wins
        # the start/cancel race; this default covers any other task.
        "task_track_started": True,
        # Task events (including "sent" for tasks still queued) feed Flower's live views.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # One shared backend per process: without it every gevent greenlet opens its own Redis connection
        # (gevent runs 2.5x slower, measured in ../shared/DESIGN.md).
        "result_backend_thread_safe": True,
        # A result that cannot be stored because Redis is restarting is retried, not dropped: a dropped result
        # would leave its future running for ever. 40 tries with backoff capped at 10 s: about five minutes.
        "result_backend_always_retry": True,
        "result_backend_max_retries": 40,
        # Results, claims and interrupt flags expire instead of filling Redis.
        "result_expires": result_ttl,
        # A worker takes a task from Redis only when a pool slot is free (prefetch 1, and no reservation
        # beyond the pool's size): queued tasks stay in Redis where any free worker can take them and
        # where LLEN shows them, instead of waiting hidden in a busy worker's memory. (Cancellation is exact
        # either way: it is decided by the claim, wherever the message sits.) Not on gevent: its worker loop
        # only notices a freed slot at the next 2 s poll, so a full gevent worker started each next task
        # ~1.9 s late (measured); there the pool's own spawn blocks when full, which holds back at most one.
        "worker_prefetch_multiplier": 1,
        "worker_disable_prefetch": not green,
        # At most once, like a local future: a task is acknowledged when it starts, so a worker that dies
        # mid-task does not make it run twice; Celery records WorkerLostError for a killed child.
        "task_acks_late": False,
        # Keep trying the broker at start instead of exiting; each attempt is logged.
        "broker_connection_retry_on_startup": True,
        # Only affects acks_late tasks (we have none); set explicitly to silence Celery's pending change.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "imports": ["worker.tasks", "worker.lesson_tasks", "worker.ledger_tasks", "worker.heartbeat",
                    "worker.redelivery"],
        "task_default_queue": default_queue,
        "worker_hijack_root_logger": True,
    }


REDELIVERY = {"visibility_timeout": 30, "unacked_restore_interval": 5, "unacked_restore_throttle": 1}
"""A message a worker fetched but never started (gevent prefetches; a worker can die before Celery even sees
a fetched message) sits in kombu's ``unacked`` hash until ``visibility_timeout`` and is then put back on
the queue by any live worker's sweep. kombu's defaults (1 hour, a sweep every 100 s) would leave such a
task's future pending that long after a worker dies; 30 s and a sweep every 5 s bound it. A live but busy
worker's message put back early is harmless: the start claim lets exactly one copy run."""


def socket_options(socket_timeout: float | None) -> dict[str, Any]:
    if socket_timeout is None:
        return {}
    return {"socket_timeout": socket_timeout, "socket_connect_timeout": 5.0}


def timeouts(socket_timeout: float | None) -> dict[str, Any]:
    """Producers never block in Redis on purpose, so a hung Redis should be an error, not a hang. Workers keep
    Celery's defaults: their gate and io tasks block in BLPOP for as long as they were asked to."""
    if socket_timeout is None:
        return {}
    return {"redis_socket_timeout": socket_timeout, "redis_socket_connect_timeout": 5.0}


def create_app(
    redis_url: str, result_ttl: int = c.DEFAULT_RESULT_TTL, default_queue: str = c.DEFAULT_QUEUE, *,
    green: bool = False, socket_timeout: float | None = None,
) -> Celery:
    """A Celery app on ``redis_url``; each producer (executor) builds its own, workers use :data:`app`."""
    celery_app = Celery("worker", set_as_current=False)
    config = celery_config(redis_url, result_ttl, default_queue, green=green, socket_timeout=socket_timeout)
    celery_app.config_from_object(config)
    return celery_app


def redis_of(celery_app: Celery) -> Redis:
    """The result backend's Redis client: claims, flags and gates live next to the results they guard."""
    backend = celery_app.backend
    if not isinstance(backend, RedisBackend):
        raise RuntimeError(f"a Redis result backend is required, not {type(backend).__name__}")
    return cast("Redis", backend.client)


def result_ttl_seconds(celery_app: Celery) -> int:
    """``result_expires`` in whole seconds, whether configured as a number or a timedelta."""
    expires = celery_app.conf.result_expires
    return int(expires.total_seconds() if isinstance(expires, timedelta) else expires)


class EnvConfig(Mapping[str, Any]):
    """The app's configuration from the environment, read when Celery first needs it, not at import.

    ``python -m worker`` has validated and exported the environment by then; anyone else importing this
    module (a producer, a test) gets a bad value reported where it is used, as a SettingsError, instead of
    an import that fails with a traceback.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._config: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            env = self._env
            self._config = celery_config(
                env.get(c.ENV_REDIS_URL, c.DEFAULT_REDIS_URL),
                result_ttl_from(env),
                env.get(c.ENV_QUEUES, c.DEFAULT_QUEUE).split(",")[0].strip() or c.DEFAULT_QUEUE,
                green=POOLS.get(env.get(c.ENV_POOL, DEFAULT_POOL), POOLS[DEFAULT_POOL]).is_green,
                max_message_bytes=max_message_bytes_from(env),
            )
        return self._config

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


app = Celery("worker", set_as_current=False)
app.config_from_object(EnvConfig(os.environ))
