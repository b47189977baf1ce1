"""``CeleryExecutor``: a ``concurrent.futures.Executor`` whose work runs on Celery workers.

It keeps the stdlib's contract: ``submit(fn, /, *args, **kwargs)``, ``map`` with the stdlib's own
timeout-and-cancel-the-rest behaviour, ``shutdown(wait, *, cancel_futures)``, ``max_workers`` as the bound
on tasks in flight (``ValueError`` when ≤ 0). This class is the API and the wiring; each concern has its own
home: the futures in flight (``flight``), sending (``dispatch``, ``sender``), map batching (``batching``),
cancel and interrupt (``cancelling``), a lost worker's policy (``lost``), and the one listener thread that
completes every future (``listener``, ``router``, ``watchdog``).
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Executor, wait
from dataclasses import replace
from typing import Any

import redis
from celery import Celery

from celery_futures.client.batching import MapBatch
from celery_futures.client.calls import CallBuilder, TaskCall
from celery_futures.client.cancelling import Canceller
from celery_futures.client.chunking import SentChunk, argument_chunks, check_chunksize, chunk_call, item_results
from celery_futures.client.connections import Connections, standalone_app
from celery_futures.client.dispatch import Dispatcher
from celery_futures.client.evidence import Evidence
from celery_futures.client.flight import Flight
from celery_futures.client.future import CeleryFuture
from celery_futures.client.listener import ResultListener
from celery_futures.client.lost import LostHandler
from celery_futures.client.router import StateRouter
from celery_futures.client.sender import TaskSender
from celery_futures.client.settings import ClientSettings
from celery_futures.protocol.backend import redis_backend
from celery_futures.protocol.installation import allowlist_of, is_installed, result_ttl_of
from celery_futures.protocol.keys import client_key, task_prefix
from celery_futures.protocol.policies import LostPolicy, parse_policy
from celery_futures.protocol.pools import Interrupt
from celery_futures.protocol.replication import fence_of
from celery_futures.protocol.requirements import check_protocol_settings
from celery_futures.protocol.sentinel import check_sentinel_settings
from celery_futures.protocol.sentinel_reads import disconnect_interrupted_reads

logger = logging.getLogger(__name__)

_live_executors: weakref.WeakSet[CeleryExecutor] = weakref.WeakSet()
_interpreter_exiting = threading.Event()


class CeleryExecutor(Executor):
    """Run callables on Celery workers; futures are real ``concurrent.futures.Future`` objects.

    ``app`` is your Celery app (one that called ``celery_futures.install(app)``): its tasks can be submitted
    as objects or by name, and its broker, backend, routing, allowlist and result lifetime are used. Without
    one, the executor makes a bare app from the environment (``REDIS_URL``, ``PRODUCER_QUEUE``,
    ``WORKER_ALLOWLIST``, ``RESULT_TTL_SECONDS``) that runs plain functions, tasks given as objects, and the
    task names in ``tasks`` (name -> lost policy, for producers that do not import the task modules), on
    ``redis_url``. ``queue`` sends every task of this executor to one queue instead of the app's routing.

    ``max_workers`` bounds how many of this executor's tasks are sent and unfinished at once; the rest wait
    in this process, cancellable for free. The default, None, sends every task at once and lets the
    workers' total concurrency be the limit. ``lost_policy``, when given, overrides every task's own answer
    to "its worker died under it" (``celery_futures/protocol/policies.py``).
    """

    def __init__(self, app: Celery | None = None, *, max_workers: int | None = None, redis_url: str | None = None,
                 queue: str | None = None, settings: ClientSettings | None = None,
                 lost_policy: LostPolicy | str | None = None,
                 tasks: Mapping[str, LostPolicy | str] | None = None) -> None:
        if app is not None and not isinstance(app, Celery):
            raise TypeError(f"the first argument of CeleryExecutor is the Celery app, not {type(app).__name__} "
                            "(max_workers and the rest are given by name: CeleryExecutor(app, max_workers=4))")
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if app is not None and (redis_url or (settings and settings.redis_url)):
            raise ValueError("pass either app (its broker_url and result_backend are used) or redis_url, not both: "
                             "app.control, which interrupt() uses, would still go to the app's broker")
        settings = resolve_settings(settings, redis_url, queue, standalone=app is None)
        self.app = app or standalone_app(settings)
        self._owns_app = app is None
        redis_backend(self.app)  # a clear error now, not at the first message
        check_sentinel_settings(self.app.conf)  # a sentinel:// URL without its master's name, by setting
        disconnect_interrupted_reads()  # redis-py's Sentinel connections, fixed for this process
        if app is not None and is_installed(app):
            check_protocol_settings(app)  # a setting against the protocol is refused here, by name
        if app is not None:
            # Its task modules (``imports``, ``include``), as a worker loads them, before anything reads the
            # registry: Celery adds its shared tasks to an app only when the app is finalized.
            app.loader.import_default_modules()
        self.settings = replace(settings, result_ttl=settings.result_ttl or result_ttl_of(self.app),
                                allowlist=settings.allowlist or allowlist_of(self.app))
        self.max_workers = max_workers
        self.executor_id = uuid.uuid4().hex[:12]
        self.lock = threading.Lock()  # futures' state decisions (the Driver protocol)
        self._close_lock = threading.Lock()
        self._closed = False
        self._connections = self._connect()
        self._wire(lost_policy, tasks or {})
        self._listener = self._start_listener()
        finalizer = weakref.finalize(self, _release, self._listener, self._sender, self._connections,
                                     self.app if self._owns_app else None)
        finalizer.atexit = False  # at exit, _shutdown_at_exit waits for the work first
        _live_executors.add(self)

    def _connect(self) -> Connections:
        connections = Connections(self.app)
        problem = connections.problem(self.settings.connect_timeout_seconds)
        if problem is not None:
            connections.close()
            raise ConnectionError(f"cannot use Redis at {connections.address}: {problem}")
        return connections

    def _wire(self, lost_policy: LostPolicy | str | None, tasks: Mapping[str, LostPolicy | str]) -> None:
        """Build the parts; none of those the listener thread holds may hold this executor (see StateRouter)."""
        settings, ttl, redis_client = self.settings, int(self.settings.result_ttl or 0), self._connections.redis
        backend: Any = self.app.backend
        self._evidence = Evidence(redis_client, self._connections.broker_redis, marker=client_key(self.executor_id),
                                  ttl=ttl, meta_key=lambda task_id: backend.get_key_for_task(task_id).decode(),
                                  decode=backend.decode, fence=fence_of(self.app))
        known = {name: parse_policy(policy, f"task {name!r} in tasks") for name, policy in tasks.items()}
        override = None if lost_policy is None else parse_policy(lost_policy, "the executor")
        self._calls = CallBuilder(None if self._owns_app else self.app, settings.allowlist or allowlist_of(self.app),
                                  settings.max_payload_bytes, known)
        self._flight = Flight(self.max_workers)
        self._sender = TaskSender(self.app, self._connections.broker, settings.queue, ttl)
        self._dispatcher = Dispatcher(self._flight, self._sender, self._evidence,
                                      send_timeout=settings.send_timeout_seconds, address=self._connections.address)
        self._canceller = Canceller(self._flight, self._evidence, redis_client, ttl,
                                    functools.partial(_revoke, self.app))
        self._batch = MapBatch(self._flight, self._dispatcher.dispatch, self._canceller.withdraw)
        self._lost = LostHandler(self._flight, self._dispatcher, self.lock,
                                 functools.partial(_new_task_id, self.task_prefix), override)
        self._router = StateRouter(self._flight, self._evidence, outage_limit=settings.outage_limit_seconds,
                                   on_lost=self._lost.on_lost)
        self._dispatcher.on_uncertain = self._router.request_audit
        self._canceller.on_reset = self._router.suspect_reset
        self._router.on_tick = self._canceller.retry_unconfirmed
        self._evidence.restore_marker()

    def _start_listener(self) -> ResultListener:
        backend: Any = self.app.backend
        key_prefix = backend.get_key_for_task("x")[:-1].decode()  # "celery-task-meta-" unless configured
        tick = self.settings.watchdog_seconds
        client = self._connections.new_redis(**ResultListener.client_options(self.task_prefix, tick))
        wake = functools.partial(_publish_empty, self._connections.redis)
        listener = ResultListener(client, key_prefix=key_prefix, task_prefix=self.task_prefix, handler=self._router,
                                  decode=backend.decode, wake=wake, tick_seconds=tick)
        try:
            listener.start(self.settings.connect_timeout_seconds)
        except ConnectionError:
            _release(None, self._sender, self._connections, self.app if self._owns_app else None)
            raise
        return listener

    # -- the Executor API ----------------------------------------------------------------------------
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> CeleryFuture:
        """Send ``fn(*args, **kwargs)`` to a worker; refuses, before sending anything, what cannot run."""
        self._check_open()
        call = self._calls.build(fn, args, kwargs)
        return self._submit_call(call, call)

    def map(self, fn: Any, *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:
        """The stdlib's ``map`` (results in order, timeout from the call, the rest cancelled on error), its
        tasks sent in pipelined batches instead of one round trip each. With ``chunksize`` > 1, as in
        ``ProcessPoolExecutor``, each ``chunksize`` items travel and run as one task
        (``celery_futures/client/chunking.py``)."""
        check_chunksize(chunksize)
        if chunksize == 1:
            with self._batch.batched():
                return super().map(fn, *iterables, timeout=timeout)
        self._check_open()
        with self._batch.batched():
            chunks = [self._submit_chunk(fn, arguments) for arguments in argument_chunks(iterables, chunksize)]
        return item_results(chunks, timeout)

    def _submit_chunk(self, fn: Any, arguments: list[tuple[Any, ...]]) -> SentChunk:
        calls = [self._calls.build(fn, args, {}) for args in arguments]
        return SentChunk(self._submit_call(chunk_call(calls), calls[0]), len(calls))

    def _submit_call(self, call: TaskCall, routed_as: TaskCall) -> CeleryFuture:
        """Register and send (or hold, inside a map) ``call``, routed as ``routed_as`` would be."""
        future = CeleryFuture(_new_task_id(self.task_prefix), self)
        future.call, future.route = call, self._sender.route(routed_as)
        future.add_done_callback(self._on_future_done)
        holding = self._batch.active()
        to_send = self._flight.add(future, call, hold=holding)
        if holding:
            self._batch.hold(future)
        else:
            self._dispatcher.dispatch(to_send)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; optionally cancel every task not started yet, cluster-wide; optionally wait."""
        self._flight.close()
        if cancel_futures:
            self._canceller.cancel_unstarted()
        if wait and not self._listener.is_current_thread() and not self._flight.completing_here():
            self._wait_outstanding()
            self._close()
        else:  # waiting here would deadlock: this thread is the one completing futures
            self._close_if_idle()

    # -- the Driver protocol (used by CeleryFuture) ----------------------------------------------------
    def claim_cancel(self, future: CeleryFuture) -> bool | None:
        return self._canceller.claim_cancel(future)

    def interrupt(self, future: CeleryFuture) -> Interrupt | None:
        return self._canceller.interrupt(future)

    # -- what lessons, tests and tools may use -----------------------------------------------------------
    @property
    def celery_app(self) -> Celery:
        """The Celery app this executor sends with (the one given, or its own bare one)."""
        return self.app

    @property
    def redis(self) -> redis.Redis:
        """The Redis client this executor uses for claims (gates, counters and checks in lessons and tests)."""
        return self._connections.redis

    @property
    def task_prefix(self) -> str:
        """Every task id this executor sends starts with it (and nothing else's does)."""
        return task_prefix(self.executor_id)

    # -- internals --------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if _interpreter_exiting.is_set():
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._flight.closed:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _on_future_done(self, future: Any) -> None:  # Future[Any] in the stdlib's callback signature
        """Free the future's slot and send what was waiting for one (runs where the future completed)."""
        future.call = None
        self._dispatcher.dispatch(self._flight.finished(future))
        if self._flight.closed:
            self._close_if_idle()

    def _close_if_idle(self) -> None:
        """After ``shutdown(wait=False)``: the last future to finish takes the listener down with it."""
        if self._flight.idle():
            self._close()

    def _close(self) -> None:
        """Stop the listener (joined unless we are on it) and release connections; idempotent."""
        self._listener.stop()
        with self._close_lock:
            first, self._closed = not self._closed, True
        if first:
            self._evidence.drop_marker()
            _release(None, self._sender, self._connections, self.app if self._owns_app else None)

    def _wait_outstanding(self) -> None:
        while pending := self._flight.outstanding():
            wait(pending)


def resolve_settings(settings: ClientSettings | None, redis_url: str | None, queue: str | None, *,
                     standalone: bool) -> ClientSettings:
    """The settings given (or the environment's bounds), with ``redis_url`` and ``queue`` on top; an executor
    without an app fills in the rest from the environment."""
    base = settings or ClientSettings.from_env()
    given = replace(base, redis_url=redis_url or base.redis_url, queue=queue or base.queue)
    return given.standalone() if standalone else given


def _new_task_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def _revoke(app: Celery, task_id: str, node: str) -> None:
    """Ask ``node`` to terminate ``task_id`` now (SIGTERM to a prefork child, a kill of a greenlet)."""
    app.control.revoke(task_id, terminate=True, signal="SIGTERM", destination=[node])


def _publish_empty(client: redis.Redis, channel: str) -> None:
    client.publish(channel, b"")


def _release(listener: ResultListener | None, sender: TaskSender, connections: Connections,
             owned_app: Celery | None) -> None:
    """Stop the listener and close the executor's connections (also run when a dropped executor is collected).
    A user's app is theirs and stays open; only the bare app an executor made for itself is closed."""
    if listener is not None:
        listener.stop()
    sender.close()
    connections.close()
    if owned_app is not None:
        owned_app.close()


@atexit.register
def _shutdown_at_exit() -> None:
    """Like the stdlib's executors: at interpreter exit, refuse new work and wait for what was submitted."""
    _interpreter_exiting.set()
    for executor in list(_live_executors):
        executor.shutdown(wait=True)
