"""Our own contract for CeleryExecutor, on real workers of every pool; tasks are gated, never timed."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, as_completed, wait
from typing import Any

import pytest
import redis

from celery_futures import (
    CeleryExecutor,
    CeleryFuture,
    Interrupt,
    NotAllowedError,
    RemoteError,
    TaskInterruptedError,
    UnknownTaskError,
)
from celery_futures.client.errors import RemoteTraceback
from celery_futures.protocol.pools import POOLS
from producer.demo import wait_running
from producer.gates import new_gate_name, open_gate, record_count
from producer.processes import RedisServer, WorkerProcess, free_port, wait_until
from worker import functions
from worker.app import client_app
from worker.errors import DemoError
from worker.tasks import demo as tasks

TIMEOUT = 60


@pytest.fixture
def executor(redis_server: RedisServer, pool_worker: WorkerProcess) -> Iterator[CeleryExecutor]:
    with CeleryExecutor(client_app(redis_server.url()), queue=pool_worker.queue) as created:
        yield created


def slots(worker: WorkerProcess) -> int:
    return worker.concurrency or POOLS[worker.pool].default_concurrency


def fill_with_gates(executor: CeleryExecutor, count: int) -> tuple[str, list[CeleryFuture]]:
    """Occupy ``count`` pool slots with tasks that wait on one gate, and wait until all of them run."""
    gate = new_gate_name()
    blockers = [executor.submit(tasks.gate, gate, TIMEOUT) for _ in range(count)]
    wait_running(blockers)
    return gate, blockers


# -- what submit accepts and refuses ------------------------------------------------------------------
def test_submit_takes_tasks_task_names_and_plain_functions(executor: CeleryExecutor) -> None:
    assert executor.submit(tasks.cpu_bound, 1000).result(TIMEOUT) == functions.spin(1000)
    assert executor.submit("worker.tasks.demo.io_sleep", 0.01).result(TIMEOUT) == 0.01
    assert executor.submit(divmod, 7, 2).result(TIMEOUT) == (3, 1)
    assert executor.submit(functions.square, x=4).result(TIMEOUT) == 16


def test_future_knows_its_task_and_where_it_ran(executor: CeleryExecutor, pool_worker: WorkerProcess) -> None:
    future = executor.submit(tasks.noop)
    future.result(TIMEOUT)
    assert future.task_id.startswith(executor.task_prefix)
    assert future.execution is not None
    assert (future.execution["hostname"], future.execution["pool"]) == (pool_worker.name, pool_worker.pool)
    assert future.submitted_at <= (future.started_at or 0) <= (future.finished_at or 0)


def local_function() -> None:
    """Importable by name, but not in the allowlist."""


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "error", "message"),
    [
        ("worker.tasks.demo.nope", (), {}, UnknownTaskError, "unknown task 'worker.tasks.demo.nope'; known tasks: "),
        (lambda: 1, (), {}, TypeError, "only module-level functions can be called by name"),
        (local_function, (), {}, NotAllowedError, "local_function is not in the worker allowlist"),
        (pow, (object(), 2), {}, TypeError, r"argument 0 of builtins:pow \(object\) is not JSON-serializable"),
        (tasks.io_sleep, (), {"seconds": {1, 2}}, TypeError, "keyword argument 'seconds' of worker.tasks.demo.io_"),
        (42, (), {}, TypeError, "fn must be a task, a task name or a function, not int"),
        ("celery_futures.call", ("os:getcwd", [], {}), {}, TypeError, "submit the function itself"),
    ],
)
def test_submit_refuses_before_sending_anything(redis_server: RedisServer, redis_client: redis.Redis, fn: Any,
                                                args: tuple[Any, ...], kwargs: dict[str, Any],
                                                error: type[Exception], message: str) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    with CeleryExecutor(client_app(redis_server.url()), queue=queue) as idle:
        with pytest.raises(error, match=message):
            idle.submit(fn, *args, **kwargs)
        assert redis_client.llen(queue) == 0


def test_bound_method_of_a_local_object_is_refused(executor: CeleryExecutor) -> None:
    with pytest.raises(TypeError, match="bound method"):
        executor.submit(threading.Event().is_set)


def test_map_with_one_bad_item_sends_nothing(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    with CeleryExecutor(client_app(redis_server.url()), queue=queue) as idle:
        with pytest.raises(TypeError, match="argument 1"):
            idle.map(pow, [2, 2, 2], [1, object(), 3])
        assert redis_client.llen(queue) == 0


def test_submit_keyword_names_of_the_executor_api_are_free(executor: CeleryExecutor) -> None:
    assert executor.submit(functions.square, x=3).result(TIMEOUT) == 9
    with pytest.raises(TypeError):
        executor.submit(fn=functions.square, x=3)  # type: ignore[call-arg]


def test_max_workers_must_be_positive() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            CeleryExecutor(max_workers=bad)


def test_unreachable_redis_is_one_clear_error() -> None:
    port = free_port()
    with pytest.raises(ConnectionError, match=f"cannot use Redis at 127.0.0.1:{port}/0: Connection refused"):
        CeleryExecutor(redis_url=f"redis://127.0.0.1:{port}/0")


def test_submit_after_shutdown_raises(executor: CeleryExecutor) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(pow, 2, 2)


# -- results, exceptions, callbacks -------------------------------------------------------------------
def test_remote_exceptions_keep_type_message_and_traceback(executor: CeleryExecutor) -> None:
    builtin = executor.submit(tasks.fail, "KeyError", "no such key").exception(TIMEOUT)
    assert type(builtin) is KeyError and builtin.args == ("no such key",)
    custom = executor.submit(tasks.fail_custom, "ours").exception(TIMEOUT)
    assert type(custom) is DemoError and str(custom) == "ours"
    assert isinstance(custom.__cause__, RemoteTraceback)
    assert "raise DemoError(message)" in str(custom.__cause__)


def test_unknown_remote_type_becomes_remote_error(executor: CeleryExecutor) -> None:
    # JSONDecodeError needs three constructor arguments but travels with one: rebuilt, it would lie
    error = executor.submit(functions.parse_json, "{").exception(TIMEOUT)
    assert isinstance(error, RemoteError) and error.remote_type == "json.decoder.JSONDecodeError"
    assert "Expecting property name" in str(error)


def test_done_callbacks_fire_without_anyone_asking(executor: CeleryExecutor) -> None:
    fired = threading.Event()
    seen: list[Any] = []

    def callback(done: Future[Any]) -> None:
        seen.append(done.result())
        fired.set()

    future = executor.submit(functions.square, 5)
    future.add_done_callback(callback)
    assert fired.wait(TIMEOUT)  # never called result()/wait() on it
    assert seen == [25]


def test_a_failing_callback_does_not_stop_delivery(executor: CeleryExecutor,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    done = threading.Event()
    first = executor.submit(functions.square, 2)
    first.add_done_callback(lambda f: 1 / 0)
    first.add_done_callback(lambda f: done.set())
    second = executor.submit(functions.square, 3)
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        assert done.wait(TIMEOUT)
        assert second.result(TIMEOUT) == 9
    assert "exception calling callback" in caplog.text


def test_progress_arrives_in_order(executor: CeleryExecutor) -> None:
    seen: list[int] = []
    future = executor.submit(tasks.progress, 4)
    future.add_progress_callback(lambda f, meta: seen.append(meta["current"]))
    assert future.result(TIMEOUT) == 4
    assert seen == [1, 2, 3, 4] and future.progress == {"current": 4, "total": 4}


def test_asyncio_gather_over_wrapped_futures(executor: CeleryExecutor) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(*(asyncio.wrap_future(executor.submit(functions.square, n)) for n in range(20)))

    assert asyncio.run(main()) == [n * n for n in range(20)]


def test_wait_and_as_completed_see_the_first_finished(executor: CeleryExecutor, pool_worker: WorkerProcess) -> None:
    if slots(pool_worker) < 2:
        pytest.skip("solo runs one task at a time: the gated task would hold the only slot")
    gate, (slow,) = fill_with_gates(executor, 1)
    fast = executor.submit(functions.square, 2)
    first = next(as_completed([slow, fast], timeout=TIMEOUT))
    assert first is fast
    open_gate(executor.redis, gate)
    done, pending = wait([slow, fast], timeout=TIMEOUT)
    assert done == {slow, fast} and not pending


# -- cancel: exact on every pool ----------------------------------------------------------------------
def test_cancel_of_a_queued_task_means_it_never_runs(executor: CeleryExecutor, pool_worker: WorkerProcess) -> None:
    gate, blockers = fill_with_gates(executor, slots(pool_worker))
    witness = f"w-{uuid.uuid4().hex}"
    queued = executor.submit(tasks.record, witness)
    callback_saw: list[bool] = []
    queued.add_done_callback(lambda f: callback_saw.append(f.cancelled()))
    assert queued.cancel() is True
    assert queued.cancelled() and queued.done() and callback_saw == [True]
    open_gate(executor.redis, gate, len(blockers))
    wait(blockers, timeout=TIMEOUT)
    assert executor.submit(tasks.record, witness).result(TIMEOUT) == 1  # the cancelled one left no count


def test_cancel_of_a_running_task_is_refused(executor: CeleryExecutor) -> None:
    gate, (running,) = fill_with_gates(executor, 1)
    assert running.cancel() is False
    assert running.running() and not running.cancelled()
    open_gate(executor.redis, gate)
    assert running.result(TIMEOUT) == "open"


def test_cancel_races_with_starts_and_the_claim_decides(executor: CeleryExecutor,
                                                        redis_client: redis.Redis) -> None:
    """Cancel 200 tasks while the workers start them: 'cancelled' exactly when it never ran."""
    names = [f"race-{uuid.uuid4().hex}" for _ in range(200)]
    futures = [executor.submit(tasks.record, name) for name in names]
    cancelled = [f.cancel() for f in futures]
    wait(futures, timeout=TIMEOUT)
    for future, name, said in zip(futures, names, cancelled, strict=True):
        ran = record_count(redis_client, name)
        assert future.cancelled() is said
        assert ran == (0 if said else 1), (future, ran)


# -- interrupt: what each pool can do -----------------------------------------------------------------
def test_interrupt_a_task_that_never_checks(executor: CeleryExecutor, pool_worker: WorkerProcess) -> None:
    gate, (running,) = fill_with_gates(executor, 1)
    method = running.interrupt()
    assert method is POOLS[pool_worker.pool].interrupt
    if method in (Interrupt.SIGNAL, Interrupt.KILL_GREENLET):
        error = running.exception(TIMEOUT)
        assert isinstance(error, TaskInterruptedError) and pool_worker.pool in str(error)
    else:  # threads, solo: the gate never checks its flag, so it runs to the end
        open_gate(executor.redis, gate)
        assert running.result(TIMEOUT) == "open"


def test_interrupt_a_task_that_checks_its_flag(executor: CeleryExecutor) -> None:
    running = executor.submit(tasks.slow, TIMEOUT, 0.01)
    wait_running([running])
    assert running.interrupt() is not None
    assert isinstance(running.exception(TIMEOUT), TaskInterruptedError)


def test_interrupt_of_a_future_that_is_not_running(executor: CeleryExecutor) -> None:
    done = executor.submit(tasks.noop)
    done.result(TIMEOUT)
    assert done.interrupt() is None


# -- back-pressure, shutdown, threads -----------------------------------------------------------------
def test_max_workers_bounds_tasks_in_flight(redis_server: RedisServer, pool_worker: WorkerProcess,
                                            redis_client: redis.Redis) -> None:
    if slots(pool_worker) < 3:
        pytest.skip("needs a pool with room for more tasks than max_workers")
    with CeleryExecutor(client_app(redis_server.url()), max_workers=2, queue=pool_worker.queue) as bounded:
        gate = new_gate_name()
        futures = [bounded.submit(tasks.gate, gate, TIMEOUT) for _ in range(5)]
        wait_running(futures[:2])
        assert [f.running() for f in futures[2:]] == [False, False, False]
        assert redis_client.llen(pool_worker.queue) == 0  # the other three wait here, not in Redis
        open_gate(bounded.redis, gate, 5)
        assert [f.result(TIMEOUT) for f in futures] == ["open"] * 5


def test_shutdown_cancel_futures_cancels_exactly_what_has_not_started(
    redis_server: RedisServer, pool_worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    """Our deterministic version of CPython's test_cancel_futures: running ones finish, the rest never run."""
    capacity = slots(pool_worker)
    with CeleryExecutor(client_app(redis_server.url()), max_workers=capacity + 3,
                        queue=pool_worker.queue) as bounded:
        gate, blockers = fill_with_gates(bounded, capacity)
        witnesses = [f"sc-{uuid.uuid4().hex}" for _ in range(8)]
        queued = [bounded.submit(tasks.record, w) for w in witnesses]  # 3 in Redis, 5 still local
        bounded.shutdown(wait=False, cancel_futures=True)
        assert all(f.cancelled() for f in queued)
        assert not any(f.cancelled() for f in blockers)
        open_gate(redis_client, gate, capacity)
        assert [f.result(TIMEOUT) for f in blockers] == ["open"] * capacity
    assert [record_count(redis_client, w) for w in witnesses] == [0] * 8


def listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("listener-cfx-")]


def test_no_thread_is_left_after_shutdown(redis_server: RedisServer, pool_worker: WorkerProcess) -> None:
    before = set(threading.enumerate())
    created = CeleryExecutor(client_app(redis_server.url()), queue=pool_worker.queue)
    assert created.submit(functions.square, 2).result(TIMEOUT) == 4
    assert len(listener_threads()) >= 1
    created.shutdown(wait=True)
    assert set(threading.enumerate()) <= before


def test_shutdown_without_wait_lets_work_finish_then_stops(redis_server: RedisServer,
                                                           pool_worker: WorkerProcess) -> None:
    before = set(threading.enumerate())
    created = CeleryExecutor(client_app(redis_server.url()), queue=pool_worker.queue)
    gate, (running,) = fill_with_gates(created, 1)
    created.shutdown(wait=False)
    assert not running.done()
    open_gate(created.redis, gate)
    assert running.result(TIMEOUT) == "open"
    wait_until(lambda: set(threading.enumerate()) <= before, TIMEOUT, "the listener to stop")


# -- failures of the infrastructure -------------------------------------------------------------------
def test_listener_reconnects_and_fetches_what_it_missed(executor: CeleryExecutor, redis_client: redis.Redis,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    gate, (running,) = fill_with_gates(executor, 1)
    with caplog.at_level(logging.WARNING, logger="celery_futures.client.listener"):
        name = f"listener-{executor.task_prefix[:-1]}"
        mine = [c for c in redis_client.client_list(_type="pubsub") if c["name"] == name]
        assert len(mine) == 1
        redis_client.client_kill_filter(_id=mine[0]["id"])
        open_gate(executor.redis, gate)  # the SUCCESS is published while the listener is away
        assert running.result(TIMEOUT) == "open"
    assert "re-subscribed" in caplog.text


def test_a_worker_that_dies_mid_task_fails_the_future(redis_server: RedisServer, worker_factory: Any) -> None:
    doomed = worker_factory.start("threads", 2)
    with CeleryExecutor(client_app(redis_server.url()), queue=doomed.queue) as created:
        _, (running,) = fill_with_gates(created, 1)
        doomed.kill()
        error = running.exception(TIMEOUT)
    assert type(error).__name__ == "WorkerGoneError"
    assert doomed.name in str(error)


def test_a_killed_prefork_child_is_worker_lost(redis_server: RedisServer, worker_factory: Any) -> None:
    import os
    import signal

    worker = worker_factory.start("prefork", 2)
    with CeleryExecutor(client_app(redis_server.url()), queue=worker.queue) as created:
        _, (running,) = fill_with_gates(created, 1)
        assert running.execution is not None
        os.kill(int(running.execution["pid"]), signal.SIGKILL)
        error = running.exception(TIMEOUT)
    assert type(error).__name__ == "WorkerLostError"
    worker.stop()


def test_future_is_a_stdlib_future(executor: CeleryExecutor) -> None:
    assert isinstance(executor.submit(tasks.noop), Future)


def test_redis_going_away_ends_futures_with_a_reason(tmp_path: Any) -> None:
    """A Redis of its own, killed under a queued task: the future fails with the reason, it never hangs;
    a submit while Redis is gone fails its future with SendError."""
    from celery_futures import ClientSettings, RedisUnavailableError, SendError

    own = RedisServer.start(tmp_path)
    settings = ClientSettings(own.url(), "nobody", None, 60, watchdog_seconds=0.2,
                                outage_limit_seconds=1.0)
    created = CeleryExecutor(settings=settings)
    try:
        queued = created.submit(tasks.noop)
        own.stop()
        assert isinstance(queued.exception(TIMEOUT), RedisUnavailableError)
        late = created.submit(tasks.noop)
        assert isinstance(late.exception(TIMEOUT), (SendError, RedisUnavailableError))
    finally:
        created.shutdown(wait=True)
    assert not [t for t in threading.enumerate() if created.executor_id in t.name]


def test_a_cancelled_task_cannot_outlive_its_claim(redis_server: RedisServer, worker_factory: Any,
                                                   redis_client: redis.Redis) -> None:
    """Messages expire with the claim: a cancel that waited in Redis longer than the TTL still never runs."""
    from celery_futures import ClientSettings
    from celery_futures.protocol.keys import claim_key

    queue, witness = f"late-{uuid.uuid4().hex[:8]}", f"ttl-{uuid.uuid4().hex}"
    settings = ClientSettings(redis_server.url(), queue, None, result_ttl=2)
    with CeleryExecutor(settings=settings) as short_lived:
        queued = short_lived.submit(tasks.record, witness)
        assert queued.cancel() is True
        wait_until(lambda: not redis_client.exists(claim_key(queued.task_id)), 10, "the claim to expire")
        worker = worker_factory.start("threads", 2, queue=queue)
        assert short_lived.submit(tasks.record, witness).result(TIMEOUT) == 1  # the cancelled one never ran
    worker.stop()


# -- found by review: each of these failed before its fix ---------------------------------------------
def own_settings(server: RedisServer, queue: str, **overrides: Any) -> Any:
    from celery_futures import ClientSettings

    return ClientSettings(server.url(), queue, None, 60, **overrides)


def test_a_long_run_of_failed_sends_fails_every_future(tmp_path: Any) -> None:
    """Sends refused by Redis under max_workers=1: every future fails (no RecursionError, no slot leak)."""
    from celery_futures import SendError

    own = RedisServer.start(tmp_path)
    try:
        own.client().acl_setuser("default", enabled=True, nopass=False, passwords=[f"+{own.password}"],
                                 categories=["+@all"], commands=["-lpush"], keys=["*"], channels=["*"])
        with CeleryExecutor(max_workers=1, settings=own_settings(own, "nobody")) as refused:
            futures = [refused.submit(tasks.noop) for _ in range(400)]
            _, pending = wait(futures, timeout=TIMEOUT)
        assert not pending
        assert all(isinstance(f.exception(), SendError) for f in futures)
    finally:
        own.stop()


@pytest.mark.parametrize("max_workers", [None, 2])
def test_map_with_a_bad_last_item_sends_none_of_it(redis_server: RedisServer, redis_client: redis.Redis,
                                                   max_workers: int | None) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    with CeleryExecutor(client_app(redis_server.url()), max_workers=max_workers, queue=queue) as idle:
        with pytest.raises(TypeError, match="argument 1"):
            idle.map(pow, [2] * 6, [1, 2, 3, 4, 5, object()])
        assert redis_client.llen(queue) == 0


def test_a_callback_may_shut_the_executor_down_during_shutdown(redis_server: RedisServer) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    created = CeleryExecutor(client_app(redis_server.url()), max_workers=2, queue=queue)
    for _ in range(5):
        created.submit(tasks.noop).add_done_callback(lambda f: created.shutdown(wait=True))
    finished = threading.Event()

    def shut_down() -> None:
        created.shutdown(cancel_futures=True)
        finished.set()

    threading.Thread(target=shut_down, daemon=True).start()
    assert finished.wait(TIMEOUT), "shutdown(cancel_futures=True) deadlocked"


def test_an_unreadable_stored_state_does_not_kill_the_listener(executor: CeleryExecutor,
                                                               redis_client: redis.Redis) -> None:
    gate, (stuck,) = fill_with_gates(executor, 1)
    key = f"celery-task-meta-{stuck.task_id}"
    redis_client.set(key, b"\xff not json")  # what the listener fetches after the reconnect below
    name = f"listener-{executor.task_prefix[:-1]}"
    listener = next(c for c in redis_client.client_list(_type="pubsub") if c["name"] == name)
    redis_client.client_kill_filter(_id=listener["id"])
    if slots_of(executor) > 1:
        assert executor.submit(functions.square, 6).result(TIMEOUT) == 36  # delivered after the bad state
    redis_client.delete(key)  # let the worker store the gate's own result again
    open_gate(redis_client, gate)
    assert stuck.result(TIMEOUT) == "open"


def slots_of(executor: CeleryExecutor) -> int:
    from producer.cluster import capacity, queue_of, workers

    return capacity(workers(executor), queue_of(executor))


def test_a_hung_redis_ends_futures_with_a_reason(tmp_path: Any) -> None:
    import signal

    from celery_futures import RedisUnavailableError

    own = RedisServer.start(tmp_path)
    settings = own_settings(own, "nobody", watchdog_seconds=0.3, outage_limit_seconds=1.0)
    created = CeleryExecutor(settings=settings)
    queued = created.submit(tasks.noop)
    own.send_signal(signal.SIGSTOP)  # not refusing: hanging
    try:
        assert isinstance(queued.exception(TIMEOUT), RedisUnavailableError)
    finally:
        own.send_signal(signal.SIGCONT)
        created.shutdown(wait=True)
        own.stop()


def test_a_dropped_executor_is_collected_and_its_thread_stops(redis_server: RedisServer,
                                                             pool_worker: WorkerProcess) -> None:
    import gc

    created = CeleryExecutor(client_app(redis_server.url()), queue=pool_worker.queue)
    assert created.submit(functions.square, 7).result(TIMEOUT) == 49
    name = f"listener-{created.task_prefix[:-1]}"
    del created
    gc.collect()
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == name], TIMEOUT, "the listener to stop")
