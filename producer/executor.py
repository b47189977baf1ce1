"""``CeleryExecutor``: a ``concurrent.futures.Executor`` whose work runs on Celery workers.

It keeps the stdlib's contract: ``submit(fn, /, *args, **kwargs)``, ``map`` with the stdlib's own
timeout-and-cancel-the-rest behaviour, ``shutdown(wait, *, cancel_futures)``, ``max_workers`` as the bound
on tasks in flight (``ValueError`` when ≤ 0). The futures are driven by one listener thread
(``producer/listener.py``), ``cancel()`` is decided by a claim in Redis (``worker/cancellation.py``), and
remote exceptions keep their type (``producer/errors.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, wait
from typing import Any

import redis

from producer.calls import CallBuilder, TaskCall, our_task_names
from producer.errors import SendError, WorkerGoneError
from producer.future import CeleryFuture
from producer.listener import ResultListener
from producer.recovery import MAX_RESENDS, Lost, lost_message, may_run_again, task_policies
from producer.sender import TaskSender, never_delivered, redis_away
from producer.settings import ProducerSettings
from producer.states import StateRouter
from worker import constants as c
from worker.app import create_app, redis_of
from worker.cancellation import claim_for_cancel, request_interrupt
from worker.policies import LostPolicy
from worker.pools import POOLS, Interrupt
from worker.preflight import redis_problem
from worker.settings import parse_redis_url

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_SECONDS = 15.0
"""No Redis command of the producer blocks on purpose, so a Redis that hangs is an error after this long."""
CLAIM_CHUNK = 1000

_live_executors: weakref.WeakSet[CeleryExecutor] = weakref.WeakSet()
_interpreter_exiting = threading.Event()


class CeleryExecutor(Executor):
    """Run callables on Celery workers; futures are real ``concurrent.futures.Future`` objects.

    ``max_workers`` bounds how many of this executor's tasks are sent and unfinished at once; the rest wait
    in this process, cancellable for free. The default, None, sends every task at once and lets the
    workers' total concurrency be the limit. Connection settings come from the environment
    (``REDIS_URL``, ``PRODUCER_QUEUE``, ``WORKER_ALLOWLIST``) unless given here. ``lost_policy``, when given,
    overrides every task's own answer to "its worker died under it" (``worker/policies.py``).
    """

    def __init__(self, max_workers: int | None = None, *, redis_url: str | None = None,
                 queue: str | None = None, settings: ProducerSettings | None = None,
                 lost_policy: LostPolicy | None = None) -> None:
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self.settings = settings or ProducerSettings.from_env(redis_url=redis_url, queue=queue)
        self._check_redis()
        self.max_workers = max_workers
        self._lost_policy = lost_policy
        self._policies = task_policies()
        self.executor_id = uuid.uuid4().hex[:12]
        self.lock = threading.Lock()  # futures' state decisions (the Driver protocol)
        self._queue_lock = threading.Lock()  # what is outstanding, unsent, in flight
        self._outstanding: dict[str, CeleryFuture] = {}
        self._unsent: OrderedDict[str, tuple[CeleryFuture, TaskCall]] = OrderedDict()
        self._in_flight = 0
        self._shutdown = False
        self._closed = False
        self._local = threading.local()  # per thread: a map() batch, a dispatch loop, a completion loop
        self._app = create_app(self.settings.redis_url, self.settings.result_ttl, self.settings.queue,
                               socket_timeout=SOCKET_TIMEOUT_SECONDS)
        self._redis = redis_of(self._app)
        self._calls = CallBuilder(self.settings.allowlist, our_task_names(), self.settings.max_payload_bytes)
        self._sender = TaskSender(self._app, self.settings.queue, self.settings.result_ttl)
        # The router holds the outstanding futures (each of which holds this executor) but this executor
        # itself only weakly: dropped without shutdown() and with nothing outstanding, it can be collected,
        # and then the finalizer stops its thread, as the stdlib's threads stop with their executor.
        self._router = StateRouter(self._outstanding.get, weakref.WeakMethod(self._snapshot), self._redis,
                                   self._app.backend, outage_limit=self.settings.outage_limit_seconds,
                                   abandon_all=weakref.WeakMethod(self._abandon_all),
                                   on_lost=weakref.WeakMethod(self._on_lost), ttl=self.settings.result_ttl,
                                   queue=self.settings.queue)
        self._listener = self._start_listener()
        finalizer = weakref.finalize(self, _release, self._listener, self._app, self._redis)
        finalizer.atexit = False  # at exit, _shutdown_at_exit waits for the work first
        _live_executors.add(self)

    # -- the Executor API ----------------------------------------------------------------------------
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> CeleryFuture:
        """Send ``fn(*args, **kwargs)`` to a worker; refuses, before sending anything, what cannot run."""
        self._check_open()
        call = self._calls.build(fn, args, kwargs)
        with self._queue_lock:
            self._check_open()
            future = self._new_future(call)
            if self._batching():
                self._local.futures.append(future)
                return future
            to_send = self._take_sendable()
        self._dispatch(to_send)
        return future

    def map(self, fn: Any, *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:
        """The stdlib's ``map`` (results in order, timeout from the call, the rest cancelled on error),
        with all its tasks sent in pipelined batches instead of one round trip each."""
        with self._batched():
            return super().map(fn, *iterables, timeout=timeout, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; optionally cancel every task not started yet, cluster-wide; optionally wait."""
        with self._queue_lock:
            self._shutdown = True
        if cancel_futures:
            self._cancel_unstarted()
        if wait and not self._listener.is_current_thread() and not self._completing_here():
            self._wait_outstanding()
            self._close()
        else:  # waiting here would deadlock: this thread is the one completing futures
            self._close_if_idle()

    # -- the Driver protocol (used by CeleryFuture) ----------------------------------------------------
    def claim_cancel(self, future: CeleryFuture) -> bool | None:
        with self._queue_lock:
            if self._unsent.pop(future.task_id, None) is not None:
                return True  # never sent: nothing to ask anyone
        try:
            outcome = claim_for_cancel(self._redis, [future.task_id], self.settings.result_ttl)[0]
        except redis.RedisError as exc:
            logger.warning("cannot cancel %s: Redis did not answer (%s)", future.task_id, exc)
            return None
        if outcome.owner is not None and future.execution is None:
            future.execution = outcome.owner.execution()
        return outcome.won

    def interrupt(self, future: CeleryFuture) -> Interrupt | None:
        execution = future.execution
        if not future.running() or execution is None:
            return None
        spec = POOLS.get(str(execution.get("pool")))
        method = spec.interrupt if spec else Interrupt.COOPERATIVE
        request_interrupt(self._redis, future.task_id, self.settings.result_ttl)
        if method in (Interrupt.SIGNAL, Interrupt.KILL_GREENLET):
            self._app.control.revoke(future.task_id, terminate=True, signal="SIGTERM",
                                     destination=[str(execution["hostname"])])
        return method

    # -- internals --------------------------------------------------------------------------------------
    def _check_redis(self) -> None:
        problem = redis_problem(self.settings.redis_url, timeout=self.settings.connect_timeout_seconds)
        if problem is not None:
            address = parse_redis_url(self.settings.redis_url)
            raise ConnectionError(f"cannot use Redis at {address}: {problem}")

    def _start_listener(self) -> ResultListener:
        backend: Any = self._app.backend
        key_prefix = backend.get_key_for_task("x")[:-1].decode()  # "celery-task-meta-" unless configured
        listener = ResultListener(self.settings.redis_url, key_prefix=key_prefix, task_prefix=self.task_prefix,
                                  handler=self._router, decode=backend.decode,
                                  wake=functools.partial(_publish_empty, self._redis),
                                  tick_seconds=self.settings.watchdog_seconds)
        try:
            listener.start(self.settings.connect_timeout_seconds)
        except ConnectionError:
            self._app.close()
            raise
        return listener

    @property
    def celery_app(self) -> Any:
        """The Celery app this executor sends with (for ``inspect`` and the like)."""
        return self._app

    @property
    def redis(self) -> redis.Redis:
        """The Redis client this executor uses (gates, counters and checks in lessons and tests)."""
        return self._redis

    @property
    def task_prefix(self) -> str:
        """Every task id this executor sends starts with it (and nothing else's does)."""
        return f"{c.TASK_ID_PREFIX}{self.executor_id}-"

    def _snapshot(self) -> list[CeleryFuture]:
        with self._queue_lock:
            return [f for f in self._outstanding.values() if f.sent]

    def _check_open(self) -> None:
        if _interpreter_exiting.is_set():
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _new_future(self, call: TaskCall) -> CeleryFuture:
        """Register a future and queue its call (caller holds ``_queue_lock``)."""
        future = CeleryFuture(self._new_task_id(), self)
        future.call = call
        self._outstanding[future.task_id] = future
        self._unsent[future.task_id] = (future, call)
        future.add_done_callback(self._on_future_done)
        return future

    def _take_sendable(self) -> list[tuple[CeleryFuture, TaskCall]]:
        """Pop as many queued calls as free slots allow (caller holds ``_queue_lock``)."""
        free = len(self._unsent) if self.max_workers is None else self.max_workers - self._in_flight
        taken = []
        while free > 0 and self._unsent:
            _, (future, call) = self._unsent.popitem(last=False)
            future.sent = True
            taken.append((future, call))
            free -= 1
        self._in_flight += len(taken)
        return taken

    def _dispatch(self, batch: list[tuple[CeleryFuture, TaskCall]]) -> None:
        """Send ``batch``, then whatever became sendable meanwhile, in a loop rather than by recursion.

        A failed send completes futures, whose done callbacks free slots and take the next calls; on this
        thread those go to a backlog this loop sends, so a long run of failures cannot overflow the stack.
        """
        local = self._local
        if getattr(local, "dispatching", False):
            local.backlog.extend(batch)
            return
        local.dispatching, local.backlog = True, []
        try:
            while batch:
                self._send(batch)
                with self._queue_lock:
                    batch, local.backlog = local.backlog + self._take_sendable(), []
        finally:
            local.dispatching = False

    def _new_task_id(self) -> str:
        return f"{self.task_prefix}{uuid.uuid4().hex}"

    def _send(self, items: list[tuple[CeleryFuture, TaskCall]]) -> None:
        """Hand ``items`` to Redis, retrying a Redis that is away until the send deadline, then fail them.

        A retried batch may have been half written; a duplicate message is harmless, the claim lets one
        copy run, and an abandoned batch is cancelled by claim so no half of it can run later.
        """
        deadline = time.monotonic() + self.settings.send_timeout_seconds
        delay = 0.1
        sent_ids = [(f, f.task_id) for f, _ in items]
        while True:
            try:
                self._sender.send([(task_id, call) for (_, task_id), (_, call) in zip(sent_ids, items, strict=True)])
                return
            except Exception as exc:
                if not redis_away(exc) or time.monotonic() + delay > deadline:
                    self._fail_send(sent_ids, exc)
                    return
                logger.warning("cannot send %d task(s) (%s); retrying in %.1fs", len(items), exc, delay)
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    def _fail_send(self, sent_ids: list[tuple[CeleryFuture, str]], cause: BaseException) -> None:
        """Abandon the futures still waiting on this send (one the watchdog sent again under a new id is not)."""
        with self._completing():
            self._abandon([future for future, task_id in sent_ids if future.task_id == task_id], cause)

    def _policy_of(self, future: CeleryFuture) -> LostPolicy:
        if self._lost_policy is not None:
            return self._lost_policy
        return self._policies.get(future.call.name if future.call else "", LostPolicy.FAIL)

    def _on_lost(self, lost: Lost) -> None:
        """The watchdog (or Celery's WorkerLostError) says the future's worker died: follow its policy."""
        future, policy = lost.future, self._policy_of(lost.future)
        if lost.started:
            future.lost_runs += 1
            retry = may_run_again(policy, future.lost_runs)
        else:
            future.resends += 1
            retry = future.resends <= MAX_RESENDS
        if retry and self._resend(future):
            return
        error = lost.error or WorkerGoneError(lost_message(lost, future.task_id, policy, future.lost_runs))
        with self._completing():
            future.resolve(exception=error)

    def _resend(self, future: CeleryFuture) -> bool:
        """Send the future's call again under a new task id (messages for the old id are ignored from now on).

        Re-pointed under the futures' lock, so a concurrent ``cancel()`` claims either the old id (already
        settled) or the new one, never a copy that then runs. False if the future ended meanwhile.
        """
        call = future.call
        with self.lock:
            if future.done() or call is None:
                return False
            with self._queue_lock:
                self._outstanding.pop(future.task_id, None)
                old, future.task_id = future.task_id, self._new_task_id()
                future.execution = None
                self._outstanding[future.task_id] = future
        logger.warning("task %s lost with its worker; sent again as %s", old, future.task_id)
        self._send([(future, call)])
        return True

    def _abandon(self, futures: list[CeleryFuture], cause: BaseException) -> None:
        """Sending failed: make sure none of these can run later, then fail them with the reason.

        If the batch may have reached Redis and Redis cannot be asked to cancel it, failing the futures would
        be a guess (the message may run). They stay outstanding instead: the watchdog's next look for
        messages that are nowhere takes back what did not arrive, and the outage limit bounds the wait.
        """
        address = parse_redis_url(self.settings.redis_url)
        try:
            claim_for_cancel(self._redis, [f.task_id for f in futures], self.settings.result_ttl)
        except redis.RedisError as exc:
            if not never_delivered(cause):
                logger.warning("%d task(s) may or may not have reached Redis at %s (%s); settling them when it "
                               "answers again", len(futures), address, exc)
                self._router.request_audit()
                return
        for future in futures:
            error = SendError(f"could not send task {future.task_id} to Redis at {address}: {cause}")
            error.__cause__ = cause
            future.resolve(exception=error)

    def _abandon_all(self, error: BaseException) -> None:
        """End every outstanding future with ``error`` (unsent ones are dropped, never to be sent)."""
        with self._queue_lock:
            self._unsent.clear()
            outstanding = list(self._outstanding.values())
        with self._completing():
            for future in outstanding:
                future.resolve(exception=error)

    def _on_future_done(self, future: Any) -> None:  # Future[Any] in the stdlib's callback signature
        """Free the future's slot and send what was waiting for one (runs where the future completed)."""
        future.call = None
        with self._queue_lock:
            self._outstanding.pop(future.task_id, None)
            if future.sent:
                self._in_flight -= 1
            to_send = self._take_sendable()
        self._dispatch(to_send)
        if self._shutdown:
            self._close_if_idle()

    def _close_if_idle(self) -> None:
        """After ``shutdown(wait=False)``: the last future to finish takes the listener down with it."""
        with self._queue_lock:
            idle = self._shutdown and not self._outstanding
        if idle:
            self._close()

    def _close(self) -> None:
        """Stop the listener (joined unless we are on it) and release connections; idempotent."""
        self._listener.stop()
        with self._queue_lock:
            first, self._closed = not self._closed, True
        if first:
            _release(None, self._app, self._redis)

    def _wait_outstanding(self) -> None:
        while True:
            with self._queue_lock:
                pending = list(self._outstanding.values())
            if not pending:
                return
            wait(pending)

    def _cancel_unstarted(self) -> None:
        """``shutdown(cancel_futures=True)``: unsent ones locally, sent ones by claim, pipelined."""
        with self._queue_lock:
            unsent = [future for future, _ in self._unsent.values()]
            self._unsent.clear()
            sent = [f for f in self._outstanding.values() if f.sent]
        with self._completing():
            for future in unsent:
                future.settle_cancel(functools.partial(bool, True))
            self._cancel_by_claim([f for f in sent if not (f.running() or f.done())])

    def _cancel_by_claim(self, candidates: list[CeleryFuture]) -> None:
        for start in range(0, len(candidates), CLAIM_CHUNK):
            chunk = candidates[start:start + CLAIM_CHUNK]
            try:
                ids = [f.task_id for f in chunk]
                outcomes = claim_for_cancel(self._redis, ids, self.settings.result_ttl)
            except redis.RedisError as exc:
                logger.warning("could not cancel %d queued task(s): %s", len(chunk), exc)
                continue
            for future, claimed, outcome in zip(chunk, ids, outcomes, strict=True):
                future.settle_cancel(functools.partial(self._claimed_cancel, future, claimed, outcome.won))

    def _claimed_cancel(self, future: CeleryFuture, claimed_id: str, won: bool) -> bool | None:
        """A pipelined claim's outcome, if it still concerns the future's task (run under the futures' lock);
        a future sent again meanwhile under a new id is claimed afresh."""
        return won if future.task_id == claimed_id else self.claim_cancel(future)

    @contextlib.contextmanager
    def _completing(self) -> Iterator[None]:
        """Mark this thread as completing futures in a loop (their callbacks run here, mid-loop)."""
        depth = getattr(self._local, "completing", 0)
        self._local.completing = depth + 1
        try:
            yield
        finally:
            self._local.completing = depth

    def _completing_here(self) -> bool:
        return bool(getattr(self._local, "completing", 0))

    def _batching(self) -> bool:
        return getattr(self._local, "futures", None) is not None

    @contextlib.contextmanager
    def _batched(self) -> Iterator[None]:
        """Queue the submits made inside, then send them together; on error, send none of them."""
        if self._batching():
            yield
            return
        self._local.futures = []
        try:
            yield
        except BaseException:
            futures, self._local.futures = self._local.futures, None
            self._withdraw(futures)
            raise
        self._local.futures = None
        with self._queue_lock:
            to_send = self._take_sendable()
        self._dispatch(to_send)

    def _withdraw(self, futures: list[CeleryFuture]) -> None:
        """Cancel a failed map's futures: first take them all out of the queue, so that cancelling one
        (whose callback frees a slot) cannot send another; a claim covers any another thread sent."""
        with self._queue_lock:
            unsent = {f.task_id for f in futures if self._unsent.pop(f.task_id, None) is not None}
        with self._completing():
            for future in futures:
                if future.task_id in unsent:
                    future.settle_cancel(functools.partial(bool, True))
                else:
                    future.cancel()


def _publish_empty(client: redis.Redis, channel: str) -> None:
    client.publish(channel, b"")


def _release(listener: ResultListener | None, app: Any, client: redis.Redis) -> None:
    """Stop the listener and close the executor's connections (also run when a dropped executor is collected)."""
    if listener is not None:
        listener.stop()
    app.close()
    client.close()


@atexit.register
def _shutdown_at_exit() -> None:
    """Like the stdlib's executors: at interpreter exit, refuse new work and wait for what was submitted."""
    _interpreter_exiting.set()
    for executor in list(_live_executors):
        executor.shutdown(wait=True)
