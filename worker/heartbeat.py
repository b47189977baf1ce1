"""A worker's proof of life: ``cfx:alive:<node>`` holds this boot's id and expires unless refreshed.

Celery records a killed prefork child as ``WorkerLostError``, but when a whole worker dies (SIGKILL, OOM,
a pulled plug) its running tasks stay STARTED for ever. So each worker process refreshes a key from a real
OS thread, which keeps beating while a task hogs the CPU, a solo worker runs a task inline, or gevent's
loop is blocked. The producer compares the key with the boot id in a task's STARTED meta: missing or
different means the worker that ran the task is gone, and the future fails with a typed error.
"""

from __future__ import annotations

import _thread
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from celery.signals import worker_init, worker_ready, worker_shutdown

from worker import constants as c

logger = logging.getLogger(__name__)

BEAT_SECONDS = 2.0
"""How often the key is refreshed."""
ALIVE_TTL_SECONDS = 10
"""How long the key outlives the last beat: five missed beats before a worker counts as gone."""

_running = {"beating": False}


def alive_key(node: str) -> str:
    return f"{c.ALIVE_PREFIX}{node}"


def boot_id() -> str | None:
    """This worker boot's id, shared with the pool's children through the environment."""
    return os.environ.get(c.ENV_BOOT_ID)


def native_thread_tools() -> tuple[Callable[..., Any], Callable[[float], None]]:
    """``start_new_thread`` and ``sleep`` that are the OS's, even in a gevent-patched process."""
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            return monkey.get_original("_thread", "start_new_thread"), monkey.get_original("time", "sleep")
    return _thread.start_new_thread, time.sleep


def beat_forever(url: str, node: str, boot: str) -> None:
    """Refresh the alive key until the worker shuts down; log (not die) when Redis hiccups."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    _, sleep = native_thread_tools()
    while _running["beating"]:
        try:
            client.set(alive_key(node), boot, ex=ALIVE_TTL_SECONDS)
        except redis.RedisError as exc:
            logger.warning("heartbeat for %s failed: %s", node, exc)
        sleep(BEAT_SECONDS)


@worker_init.connect
def _new_boot(**_: Any) -> None:
    os.environ[c.ENV_BOOT_ID] = uuid.uuid4().hex


@worker_ready.connect
def _start_beating(sender: Any, **_: Any) -> None:
    node, boot = sender.hostname, boot_id()
    if boot is None:
        return
    _running["beating"] = True
    start, _sleep = native_thread_tools()
    start(beat_forever, (sender.app.conf.broker_url, node, boot))
    logger.info("heartbeat started for %s (boot %s)", node, boot)


@worker_shutdown.connect
def _stop_beating(sender: Any, **_: Any) -> None:
    """Clean shutdown: running tasks have finished by now, so the key can go at once."""
    _running["beating"] = False
    boot = boot_id()
    if boot is None:
        return
    try:
        client = redis.Redis.from_url(sender.app.conf.broker_url, socket_timeout=5)
        client.delete(alive_key(sender.hostname))
    except redis.RedisError as exc:
        logger.warning("could not clear heartbeat for %s: %s", sender.hostname, exc)
