"""Our demo Celery app: configured from the environment, with truthful futures installed like any user's.

``python -m worker`` exports its resolved settings to the environment before Celery imports this module
(``celery -A worker.app``), so the worker's children and this module see the same configuration. Anyone
else importing it (the lab's producer, a test) gets the same app; a bad variable is reported where it is
used, as a SettingsError, instead of an import that fails with a traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery

import celery_futures
from celery_futures.protocol.pools import DEFAULT_POOL, POOLS
from celery_futures.protocol.sentinel import ENV_SENTINEL_MASTER, ENV_SENTINEL_PASSWORD, redis_settings
from celery_futures.protocol.settings import (
    ALLOWLIST_SETTING,
    DEFAULT_QUEUE,
    DEFAULT_REDIS_URL,
    EVENT_FLUSH_SETTING,
    MAX_BYTES_OPTION,
    max_message_bytes_from,
    result_ttl_from,
)
from worker import constants as c
from worker.settings import allowlist_from, event_flush_from

TASK_MODULES = ["worker.tasks.demo", "worker.tasks.lessons", "worker.tasks.ledger"]


def celery_config(redis_url: str, result_ttl: int, default_queue: str, *, green: bool = False,
                  max_message_bytes: int | None = None, allowlist: str | None = None,
                  event_flush_seconds: float | None = None, sentinel_master: str | None = None,
                  sentinel_password: str | None = None) -> dict[str, Any]:
    """Celery settings of our demo, each with the reason we want it. What the protocol itself needs (JSON
    only, result retries, the message guard, redelivery timings) ``celery_futures.install`` adds.
    ``sentinel_master`` (and the sentinels' own ``sentinel_password``) go with a ``sentinel://`` URL."""
    # Redis is both the broker and the result backend: one service to run (or one Sentinel group).
    where = redis_settings(redis_url, sentinel_master, sentinel_password)
    return {
        **where,
        "broker_transport_options": {**where.get("broker_transport_options", {}),
                                     MAX_BYTES_OPTION: max_message_bytes or c.DEFAULT_MAX_MESSAGE_BYTES},
        ALLOWLIST_SETTING: allowlist if allowlist is not None else ",".join(c.DEMO_ALLOWLIST),
        # Task events (including "sent" for tasks still queued) feed Flower's live views; the worker sends
        # them in batches, every WORKER_EVENT_FLUSH_SECONDS (the library's default when unset).
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        **({} if event_flush_seconds is None else {EVENT_FLUSH_SETTING: event_flush_seconds}),
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
        "imports": TASK_MODULES,
        "task_default_queue": default_queue,
        "worker_hijack_root_logger": True,
    }


def create_app(redis_url: str, result_ttl: int = c.DEFAULT_RESULT_TTL, default_queue: str = DEFAULT_QUEUE, *,
               sentinel_master: str | None = None, sentinel_password: str | None = None) -> Celery:
    """Our demo app's settings on ``redis_url``, installed, for a process that talks to workers there (the
    lab's executors, health checks, the bench's raw client, tests). Our tasks are Celery's shared tasks, so
    this app has them too once it loads the task modules (``imports``) before it is finalized."""
    client = Celery("worker", set_as_current=False)
    client.config_from_object(celery_config(redis_url, result_ttl, default_queue, sentinel_master=sentinel_master,
                                            sentinel_password=sentinel_password))
    return celery_futures.install(client)


@functools.cache
def client_app(redis_url: str, sentinel_master: str | None = None, sentinel_password: str | None = None) -> Celery:
    """One :func:`create_app` per URL for the lab's executors (an app's connections are pooled: reuse it)."""
    return create_app(redis_url, sentinel_master=sentinel_master, sentinel_password=sentinel_password)


class EnvConfig(Mapping[str, Any]):
    """The app's configuration from the environment, read when Celery first needs it, not at import."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._config: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._config is None:
            env = self._env
            self._config = celery_config(
                env.get(c.ENV_REDIS_URL, DEFAULT_REDIS_URL),
                result_ttl_from(env),
                env.get(c.ENV_QUEUES, DEFAULT_QUEUE).split(",")[0].strip() or DEFAULT_QUEUE,
                green=POOLS.get(env.get(c.ENV_POOL, DEFAULT_POOL), POOLS[DEFAULT_POOL]).is_green,
                max_message_bytes=max_message_bytes_from(env),
                allowlist=str(allowlist_from(env)),
                event_flush_seconds=event_flush_from(env),
                sentinel_master=env.get(ENV_SENTINEL_MASTER),
                sentinel_password=env.get(ENV_SENTINEL_PASSWORD),
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
celery_futures.install(app)

