"""The one thread per executor that completes futures: push, never poll.

Data flow::

    user code ──submit/map──▶ CeleryExecutor ──validate──▶ TaskSender ──LPUSH (pipelined)──▶ Redis queue
        ▲                          │ registers the future (task id cfx-<executor>-<uuid>)       │
        │                          ▼                                                            ▼
        │                    ResultListener  ◀── PSUBSCRIBE celery-task-meta-cfx-<executor>-* ── worker
        │                    (this thread,        STARTED / PROGRESS / SUCCESS / FAILURE / REVOKED,
        │                     one connection)     published by the worker's result backend
        │                          │
        └── result(), wait(), as_completed(), callbacks ◀── future.mark_started / resolve

Task ids carry the executor's id, so a single *pattern* subscription, made before the first task is sent,
covers every task this executor will ever send: nothing is subscribed per task, no message can be
published before we listen, and other producers' results never reach us. If the connection drops, the
thread reconnects with backoff, subscribes again, and only then asks the executor to fetch the stored
state of every outstanding task (one MGET per thousand), so a message missed in the gap cannot leave a
future waiting for ever. The same loop, when idle, lets the executor check running tasks' workers are alive.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis
from redis.client import PubSub

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0
WAKE_SUFFIX = "__wake__"


class StateHandler(Protocol):
    def on_state(self, task_id: str, meta: dict[str, Any]) -> None:
        """A task's state message arrived."""

    def on_resubscribed(self) -> None:
        """The subscription is back after a disconnect: fetch what may have been missed."""

    def on_idle(self) -> None:
        """Called at least every ``tick_seconds``: time for the liveness watchdog."""

    def on_outage(self, seconds: float) -> None:
        """Redis has been unreachable for ``seconds``; called after each failed reconnect."""


class ResultListener:
    """Owns one pub/sub connection and one thread; feeds decoded state messages to a handler."""

    def __init__(self, client: redis.Redis, *, key_prefix: str, task_prefix: str, handler: StateHandler,
                 decode: Callable[[bytes], Any], wake: Callable[[str], object], tick_seconds: float) -> None:
        """Listen to ``<key_prefix><task_prefix>*`` (the backend's channels for our task ids) on ``client``,
        which this listener owns from now on (made with :meth:`client_options`)."""
        self._client = client
        self._key_prefix = key_prefix
        self._channel_prefix = key_prefix + task_prefix
        self._handler = handler
        self._decode = decode
        self._wake = wake
        self._tick_seconds = tick_seconds
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._last_error: str | None = None
        self._failures = 0  # consecutive failed connections; the outage started with the first
        self._outage_started = 0.0
        self._thread = threading.Thread(target=self._run, name=self.client_name(task_prefix),
                                        daemon=True)

    @staticmethod
    def client_name(task_prefix: str) -> str:
        """The name ``CLIENT LIST`` shows for this listener's connection: which producer it is."""
        return f"listener-{task_prefix.rstrip('-')}"

    @classmethod
    def client_options(cls, task_prefix: str, tick_seconds: float) -> dict[str, Any]:
        """How the listener's connection must be made: kept alive, named, and timing out only after two
        ticks (a quiet subscription is pinged every tick, so a silent socket means a hung Redis)."""
        return {"socket_keepalive": True, "socket_connect_timeout": 5, "socket_timeout": max(10.0, 2 * tick_seconds),
                "client_name": cls.client_name(task_prefix)}

    def start(self, timeout: float) -> None:
        """Start the thread and return once the subscription is live; raise ConnectionError if it is not."""
        self._thread.start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise ConnectionError(f"cannot subscribe to task results: {self._last_error or 'timed out'}")

    def stop(self) -> None:
        """Ask the thread to stop; from any other thread, also wake it and wait until it has gone.

        Idempotent and safe from several threads. Only the listener thread itself touches its connection
        (it closes it on the way out); the wake-up message goes out on the owner's connection.
        """
        self._stopping.set()
        if self.is_current_thread() or not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):  # if Redis is away, the loop sees the flag at its next tick
            self._wake(self._channel_prefix + WAKE_SUFFIX)
        self._thread.join()

    def is_current_thread(self) -> bool:
        """True inside a callback the listener runs; waiting for futures there would deadlock."""
        return threading.current_thread() is self._thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen_once()
            except Exception as exc:  # any failure means: reconnect; this thread must never die silently
                self._failures += 1
                if self._failures == 1:
                    self._outage_started = time.monotonic()
                self._last_error = str(exc)
                delay = min(MAX_BACKOFF_SECONDS, 0.1 * 2**self._failures)
                level = logging.WARNING if isinstance(exc, redis.RedisError) else logging.ERROR
                logger.log(level, "result listener lost Redis (%s); reconnecting in %.1fs", exc, delay,
                           exc_info=not isinstance(exc, redis.RedisError))
                if self._subscribed.is_set():
                    self._guarded(functools.partial(self._handler.on_outage, time.monotonic() - self._outage_started))
                self._stopping.wait(delay)
        self._client.close()

    def _listen_once(self) -> None:
        """Subscribe (catching up on what a reconnect may have missed), then deliver until stopped or broken."""
        with self._subscribe() as pubsub:
            if self._subscribed.is_set():
                logger.warning("result listener re-subscribed; fetching states it may have missed")
                self._guarded(self._handler.on_resubscribed)
            self._subscribed.set()
            self._failures = 0
            self._pump(pubsub)

    def _subscribe(self) -> PubSub:
        pubsub: PubSub = self._client.pubsub()  # type: ignore[no-untyped-call]
        pubsub.psubscribe(self._channel_prefix + "*")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "psubscribe":
                return pubsub
        pubsub.close()
        raise redis.ConnectionError("no confirmation of the result subscription")

    def _pump(self, pubsub: PubSub) -> None:
        """Deliver messages; every tick run the idle hook, and make sure Redis still answers.

        A Redis that hangs (rather than refusing) would leave a quiet subscription quiet for ever, so a
        silent tick sends PING, and two silent ticks in a row count as a lost connection.
        """
        next_tick = heard = time.monotonic()
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=self._tick_seconds)
            now = time.monotonic()
            if message is not None:
                heard = now
                if message["type"] == "pmessage":
                    self._dispatch(message["channel"], message["data"])
            if now >= next_tick:
                self._guarded(self._handler.on_idle)
                next_tick = now + self._tick_seconds
                if now - heard > 2 * self._tick_seconds:
                    raise redis.ConnectionError(f"Redis did not answer for {now - heard:.0f}s")
                if now - heard >= self._tick_seconds:
                    pubsub.ping()

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        task_id = channel.decode()[len(self._key_prefix):]
        if task_id.endswith(WAKE_SUFFIX):
            return
        self._guarded(lambda: self._handler.on_state(task_id, self._decode(data)))

    @staticmethod
    def _guarded(call: Callable[[], object]) -> None:
        """A handler bug is logged; it must never stop delivery to the other futures."""
        try:
            call()
        except Exception:
            logger.exception("result listener handler failed")
