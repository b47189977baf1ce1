"""A Redis Sentinel failover under load, with real processes: a primary, its replica, three sentinels, real
workers of two pools and two producers, and a SIGKILL of the primary mid-run. Every future ends within a
bound, truthfully: the ledger (kept in the session's own Redis, outside the fault) says what ran.

Also the fence behind it (``celery_futures/protocol/replication.py``), made visible by stopping the replica
(SIGSTOP: it stays connected and acknowledges nothing): a cancel no replica has is not a cancel yet, a task
whose start claim no replica has does not run its body, and a final state no replica has is stored again.
Tasks wait at gates the test opens; nothing here sleeps and hopes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, wait
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from celery_futures import CeleryExecutor, CeleryFuture, ClientSettings
from celery_futures.client.errors import RedisUnavailableError, SendError, WorkerGoneError
from celery_futures.protocol import keys as k
from celery_futures.protocol.backend import backend_redis
from celery_futures.protocol.errors import RedisDataLostError
from celery_futures.protocol.keys import claim_key
from producer.processes import RedisServer, WorkerFactory, wait_until
from producer.sentinels import SentinelGroup
from worker import constants as c
from worker.errors import DemoError
from worker.tasks import ledger as ledger_tasks
from worker.tasks.ledger import runs

TIMEOUT = 60
ENDED_BOUND_SECONDS = 60.0
"""Every future ends within this of the kill: promotion (~2-3 s), reconnects, the watchdog's grace after a
reconnect (12 s) before it judges anything, and the tasks' own time."""
BACKLOG_KEY = "cfx:test:replication-backlog"
BACKLOG_BYTES = 48 * 1024 * 1024
"""Far more than loopback's socket buffers, well under Redis's 64 MB soft limit for a replica's output."""
LOST_WRITE_ERRORS = (RedisDataLostError, WorkerGoneError, SendError, RedisUnavailableError)
"""The typed errors a future may end with because a failover lost a write (each names its cause)."""


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    started = SentinelGroup.start(tmp_path / "sentinel-group")
    yield started
    started.stop()


@pytest.fixture
def factory(group: SentinelGroup, redis_server: RedisServer, tmp_path: Path) -> Iterator[WorkerFactory]:
    app = group.app()
    made = WorkerFactory(group, tmp_path, app)
    yield made
    made.stop_all()
    app.close()


def settings() -> ClientSettings:
    return ClientSettings(watchdog_seconds=0.5, send_timeout_seconds=30.0)


def ledger_env(redis_server: RedisServer) -> dict[str, str]:
    return {c.ENV_LEDGER_REDIS_URL: redis_server.url()}


def release(ledger: redis.Redis, token: str) -> None:
    ledger.lpush(f"{c.GATE_PREFIX}{token}", "go")


def wait_started(future: CeleryFuture) -> None:
    wait_until(lambda: future.running() and "pid" in (future.execution or {}), TIMEOUT,
               f"task {future.task_id} to start", poll=0.02)


class Producer:
    """One executor with its own app, and what the test asked of each of its futures."""

    def __init__(self, group: SentinelGroup, queue: str, run: str) -> None:
        self.app: Celery = group.app()
        self.executor = CeleryExecutor(self.app, queue=queue, settings=settings())
        self.run = run
        self.futures: dict[str, CeleryFuture] = {}
        self.cancelled: set[str] = set()
        """Tokens whose ``cancel()`` said True: the ledger must never show them."""
        self.reruns: set[str] = set()
        """Tokens sent as ``RERUN`` tasks: the ledger may show two runs of those, never more."""
        self.completions: Counter[str] = Counter()
        self._lock = threading.Lock()

    def submit(self, token: str, action: str = "ok", seconds: float = 0.0, *, rerun: bool = False) -> CeleryFuture:
        task = ledger_tasks.ledger_rerun if rerun else ledger_tasks.ledger_once
        if rerun:
            self.reruns.add(token)
        future = self.executor.submit(task, self.run, token, action, seconds)
        future.add_done_callback(lambda _: self._completed(token))
        with self._lock:
            self.futures[token] = future
        return future

    def cancel(self, token: str) -> bool:
        won = self.futures[token].cancel()
        if won:
            self.cancelled.add(token)
        return won

    def _completed(self, token: str) -> None:
        with self._lock:
            self.completions[token] += 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.app.close()


def outcome_problem(token: str, future: CeleryFuture, producer: Producer) -> str | None:
    """Why ``future``'s end is not one the test allows for ``token``, or None."""
    if future.cancelled():
        return None if token in producer.cancelled or token.startswith("cancel") else "cancelled, never asked to"
    error = future.exception()
    if token.startswith("fail"):
        return None if isinstance(error, (DemoError, *LOST_WRITE_ERRORS)) else f"ended with {error!r}"
    if error is not None:
        return None if isinstance(error, LOST_WRITE_ERRORS) else f"ended with {error!r}"
    return None if future.result() == token else f"returned {future.result()!r}"


def fill_every_slot(producers: list[Producer], per_producer: int) -> list[tuple[Producer, str]]:
    """Gated tasks (one ``RERUN`` per producer) that take every pool slot, running when this returns."""
    gated = [(p, f"gated-{p.run[:4]}-{i}") for p in producers for i in range(per_producer)]
    for producer, token in gated:
        producer.submit(token, "gate", TIMEOUT, rerun=token.endswith("-0"))
    for producer, token in gated:
        wait_started(producer.futures[token])
    return gated


def queue_mixed_work(producer: Producer) -> None:
    """Queued behind the gates: plain, failing, progress-reporting RERUN tasks, and some cancelled at once."""
    for i in range(8):
        producer.submit(f"ok-{i}")
    for i in range(2):
        producer.submit(f"fail-{i}", "fail")
    for i in range(4):
        producer.submit(f"progress-{i}", "progress", 0.1, rerun=True)
    for i in range(3):
        producer.submit(f"cancel-{i}")
        assert producer.cancel(f"cancel-{i}") is True  # every slot is taken: nothing has started it


def test_a_primary_killed_mid_run_fails_over_and_every_future_ends_truthfully(
        group: SentinelGroup, factory: WorkerFactory, redis_server: RedisServer,
        record_property: Callable[[str, Any], None]) -> None:
    ledger = redis_server.client()
    queues = ("fo-a", "fo-b")
    workers = [factory.start("prefork", 2, queue=",".join(queues), env=ledger_env(redis_server)),
               factory.start("threads", 4, queue=",".join(queues), env=ledger_env(redis_server))]
    producers = [Producer(group, queue, uuid.uuid4().hex) for queue in queues]
    try:
        gated = fill_every_slot(producers, 3)  # 6 slots: prefork 2 + threads 4
        for producer in producers:
            queue_mixed_work(producer)
        during = threading.Thread(target=lambda: [producers[0].submit(f"during-{i}") for i in range(5)])

        killed_at = time.monotonic()
        old = group.kill_primary()
        for _, token in gated:  # their results are stored through the failover
            release(ledger, token)
        during.start()  # these sends retry until a master answers
        cancelled_during = producers[1].cancel("ok-7")  # decided, or honestly not (False), mid-failover
        group.wait_promoted(old)
        promoted_at = time.monotonic()
        for producer in producers:
            for i in range(5):
                producer.submit(f"after-{i}")
        during.join(TIMEOUT)

        futures = {(p.run, token): f for p in producers for token, f in p.futures.items()}
        _, pending = wait(futures.values(), timeout=ENDED_BOUND_SECONDS)
        ended_at = time.monotonic()
        assert not pending, [getattr(f, "task_id", f) for f in pending]
    finally:
        for producer in producers:
            producer.close()

    finished_after = [f.finished_at for f in futures.values() if f.finished_at and f.finished_at > killed_at]
    stall = min(finished_after) - killed_at
    lost_writes = [f for f in futures.values() if not f.cancelled() and isinstance(f.exception(), LOST_WRITE_ERRORS)]
    for name, value in (("failover_promotion_seconds", round(promoted_at - killed_at, 2)),
                        ("failover_stall_seconds", round(stall, 2)),
                        ("failover_last_end_seconds", round(max(finished_after) - killed_at, 2)),
                        ("failover_futures", len(futures)),
                        ("failover_lost_write_errors", len(lost_writes)),
                        ("failover_cancel_during_outage", cancelled_during)):
        record_property(name, value)
        print(f"{name}={value}")

    assert ended_at - killed_at < ENDED_BOUND_SECONDS
    for producer in producers:
        ran = runs(ledger, producer.run)
        problems = {token: problem for token, future in producer.futures.items()
                    if (problem := outcome_problem(token, future, producer)) is not None}
        assert not problems
        assert not producer.cancelled & set(ran), "a task whose cancel() said True ran"
        assert all(n == 1 for n in producer.completions.values()), "a future finished twice"
        assert set(producer.completions) == set(producer.futures)
        for token, future in producer.futures.items():
            assert ran.get(token, 0) <= (2 if token in producer.reruns else 1), (token, ran.get(token))
            if not future.cancelled() and future.exception() is None:
                assert ran.get(token, 0) >= 1, f"{token} has a result but never ran"
    assert all(w.process.poll() is None for w in workers), "a worker needed a restart"
    assert group.primary().port != old.port


def test_the_demo_worker_and_a_standalone_executor_find_the_master_from_the_environment(
        group: SentinelGroup, factory: WorkerFactory, redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``REDIS_URL=sentinel://...`` with ``REDIS_SENTINEL_MASTER`` (and the sentinels' password) is all either
    needs: the worker's health check and an executor given no app ask the sentinels for the master; and the
    worker reads its queue through the message guard's Sentinel transport (junk is dropped, not fatal)."""
    worker = factory.start("solo", queue="from-env", env=ledger_env(redis_server))  # started from worker_env()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}, **group.worker_env(),
           c.ENV_NAME: worker.name}
    check = subprocess.run([sys.executable, "-m", "worker", "--check"], env=env, capture_output=True, text=True,
                           timeout=TIMEOUT, check=False)
    assert check.returncode == 0, check.stderr
    with group.primary().client() as primary:
        primary.lpush("from-env", b"not json at all")  # without the guard: "Unrecoverable error", no worker
    for name, value in group.worker_env().items():
        monkeypatch.setenv(name, value)
    with CeleryExecutor(queue="from-env") as executor:  # its own bare app, from the environment
        assert executor.submit(ledger_tasks.ledger_once, uuid.uuid4().hex, "standalone").result(TIMEOUT) == "standalone"
        assert executor.settings.sentinel_master == "mymaster"
    assert "rejected a message that is not JSON" in worker.log() and worker.process.poll() is None


# -- the fence, seen with a replica that acknowledges nothing -----------------------------------------------
def stop_replica(group: SentinelGroup, *, backlog_bytes: int = 0) -> RedisServer:
    """SIGSTOP the replica: it stays connected and acknowledges nothing. With ``backlog_bytes``, also fill its
    link with that much junk, so that every write after it waits in the primary's memory (the kernel's socket
    buffers hold a few MB): a replica that lags, whose promotion loses what the primary took since."""
    primary = group.primary()
    replica = next(n for n in group.alive() if n is not primary)
    replica.send_signal(signal.SIGSTOP)
    if backlog_bytes:
        with primary.client() as client:
            client.set(BACKLOG_KEY, b"x" * backlog_bytes, ex=60)
    return replica


def logged_together(worker_log: str, *parts: str) -> bool:
    """Whether one line of the worker's log has every one of ``parts``."""
    return any(all(part in line for part in parts) for line in worker_log.splitlines())


def test_without_a_replicas_word_no_cancel_start_or_result_counts(
        group: SentinelGroup, factory: WorkerFactory, redis_server: RedisServer) -> None:
    """A cancel no replica confirmed is False (the future stays pending) until a replica has it, then the
    future ends cancelled; a final state no replica confirmed is stored again; a start claim no replica
    confirmed holds the task's body back (no ledger entry) until the replica answers."""
    ledger = redis_server.client()
    worker = factory.start("threads", 1, queue="fence", env=ledger_env(redis_server))
    busy_side, idle_side = Producer(group, "fence", uuid.uuid4().hex), Producer(group, "fence-idle", uuid.uuid4().hex)
    try:
        busy = busy_side.submit("busy", "gate", TIMEOUT)
        wait_started(busy)
        idle = idle_side.submit("idle")  # nobody consumes its queue: only the claim can settle it
        replica = stop_replica(group)
        try:
            assert idle.cancel() is False  # written on the primary, confirmed by nobody: not a cancel yet
            assert group.primary().client().get(claim_key(idle.task_id)) == k.CLAIM_CANCELLED.encode()
            assert not idle.done()
            release(ledger, "busy")
            wait_until(lambda: logged_together(worker.log(), busy.task_id, "storing it again"), TIMEOUT,
                       "the worker to store the unconfirmed result again")
        finally:
            replica.send_signal(signal.SIGCONT)
        assert busy.result(TIMEOUT) == "busy"
        wait_until(lambda: logged_together(worker.log(), busy.task_id, "confirmed by a replica now"), TIMEOUT,
                   "the result to be confirmed once the replica answers")
        with pytest.raises(CancelledError):
            idle.result(TIMEOUT)  # asked again at a tick, confirmed now: cancelled, and it never runs

        replica = stop_replica(group)
        try:
            late = busy_side.submit("late")
            wait_until(lambda: logged_together(worker.log(), late.task_id, "unconfirmed while claiming"), TIMEOUT,
                       "the start claim to wait for a replica")
            assert "late" not in runs(ledger, busy_side.run)  # claimed on the primary, its body held back
        finally:
            replica.send_signal(signal.SIGCONT)
        assert late.result(TIMEOUT) == "late"
    finally:
        busy_side.close()
        idle_side.close()
    assert runs(ledger, busy_side.run) == {"busy": 1, "late": 1}
    assert runs(ledger, idle_side.run) == {}


def test_a_failover_to_a_replica_that_missed_the_last_writes_keeps_every_promise(
        group: SentinelGroup, factory: WorkerFactory, redis_server: RedisServer,
        record_property: Callable[[str, Any], None]) -> None:
    """Every write made while the replica was stopped is lost when the primary dies and that replica is
    promoted: a stored result, a start claim, a queued message, a cancel. None of them breaks a promise: the
    result is stored again on the new master, the task whose start was never confirmed never ran and says
    so, the lost message is found nowhere and sent again, and the cancel is asked again until it holds."""
    ledger = redis_server.client()
    worker = factory.start("threads", 2, queue="lossy", env=ledger_env(redis_server))
    lossy, idle_side = Producer(group, "lossy", uuid.uuid4().hex), Producer(group, "lossy-idle", uuid.uuid4().hex)
    try:
        busy = lossy.submit("busy", "gate", TIMEOUT)
        wait_started(busy)
        idle = idle_side.submit("idle")
        replica = stop_replica(group, backlog_bytes=BACKLOG_BYTES)
        try:
            assert idle.cancel() is False
            release(ledger, "busy")
            assert busy.result(TIMEOUT) == "busy"  # published at once; its stored copy is not confirmed
            wait_until(lambda: logged_together(worker.log(), busy.task_id, "storing it again"), TIMEOUT,
                       "busy's result to wait for a replica")
            late = lossy.submit("late")
            wait_until(lambda: logged_together(worker.log(), late.task_id, "unconfirmed while claiming"), TIMEOUT,
                       "late's start claim to wait for a replica")
            queued = lossy.submit("queued")  # no free slot: its message waits, on the primary only
            killed_at = time.monotonic()
            old = group.kill_primary()
        finally:
            replica.send_signal(signal.SIGCONT)
        new = group.wait_promoted(old)
        futures = [busy, late, queued, idle]
        _, pending = wait(futures, timeout=ENDED_BOUND_SECONDS)
        assert not pending, [name for name, f in zip(("busy", "late", "queued", "idle"), futures, strict=True)
                             if f in pending]
    finally:
        lossy.close()
        idle_side.close()
    meta = new.client().get(f"celery-task-meta-{busy.task_id}")
    assert meta is not None and b'"SUCCESS"' in meta  # stored again on the promoted replica
    late_error = late.exception()
    assert isinstance(late_error, RedisDataLostError), late_error  # its claim and message went with the loss
    assert queued.result() == "queued" and queued.resends == 1  # found nowhere, sent again, ran once
    assert idle.cancelled()
    ran = runs(ledger, lossy.run)
    assert ran == {"busy": 1, "queued": 1}, ran  # late's body never ran, as its future says
    assert runs(ledger, idle_side.run) == {}
    lost_writes = [f for f in futures if not f.cancelled() and isinstance(f.exception(), LOST_WRITE_ERRORS)]
    record_property("lossy_failover_lost_write_errors", len(lost_writes))
    record_property("lossy_failover_last_end_seconds", round(max(f.finished_at or 0 for f in futures) - killed_at, 2))
    print(f"lossy_failover_lost_write_errors={len(lost_writes)}")


class Interrupted(BaseException):
    """What a greenlet kill or a time limit is to a read in progress: not an error redis-py retries."""


def interrupt_soon(_signum: int, _frame: Any) -> None:
    raise Interrupted


def test_an_interrupted_read_never_hands_its_reply_to_the_next_command(group: SentinelGroup) -> None:
    """A Sentinel-managed connection whose read was interrupted is closed, not pooled with the reply on it
    (``celery_futures/protocol/sentinel_reads.py``): the next command gets its own reply."""
    app = group.app()  # installs celery_futures, as every process of ours does
    try:
        client = backend_redis(app)
        assert client.ping() is True
        previous = signal.signal(signal.SIGALRM, interrupt_soon)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):
                client.blpop(["cfx:test:never-pushed"], timeout=1)  # interrupted while waiting for its reply
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert client.ping() is True  # not the BLPOP's nil, a second later
        assert client.set("cfx:test:probe", "x", ex=60) is True and client.get("cfx:test:probe") == b"x"
    finally:
        app.close()
