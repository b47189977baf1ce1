"""Faults real clusters see, with real processes, real signals and a real Redis: no future waits for ever.

Each test gates its tasks on events it controls (``cfx:gate:<token>`` lists, futures' own states) and bounds
every wait with a deadline; nothing here sleeps and hopes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import CancelledError, wait
from pathlib import Path
from typing import Any

import pytest
import redis

from celery_futures import CeleryExecutor, CeleryFuture, ClientSettings, SendError
from celery_futures.client.errors import WorkerGoneError, WorkerLostError
from celery_futures.client.settings import ENV_CONNECT_TIMEOUT
from celery_futures.protocol import keys as k
from celery_futures.protocol.errors import RedisDataLostError
from celery_futures.protocol.keys import ALIVE_TTL_SECONDS, claim_key
from producer.processes import RedisServer, WorkerFactory, client_app, free_port, wait_until
from worker import constants as c
from worker.tasks import ledger as ledger_tasks
from worker.tasks.ledger import runs

WATCHDOG_SECONDS = 0.5
LOST_BOUND_SECONDS = ALIVE_TTL_SECONDS + 4 * WATCHDOG_SECONDS + 5
"""The documented bound on noticing a dead worker (heartbeat TTL + a watchdog tick), plus scheduling slack."""
TIMEOUT = 60


def settings_for(server: RedisServer, queue: str, **overrides: Any) -> ClientSettings:
    return ClientSettings(server.url(), queue, None, 300, watchdog_seconds=WATCHDOG_SECONDS,
                            **overrides)


def text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def claim_of(client: redis.Redis, task_id: str) -> str:
    return text(client.get(claim_key(task_id)))


def release(client: redis.Redis, token: str) -> None:
    client.lpush(f"{c.GATE_PREFIX}{token}", "go")


def wait_started(future: CeleryFuture, on: str | None = None) -> None:
    """Until the future runs (on worker ``on``, when given): its STARTED state arrived."""
    def started() -> bool:
        execution = future.execution or {}
        return future.running() and "pid" in execution and (on is None or execution.get("hostname") == on)
    wait_until(started, TIMEOUT, f"task {future.task_id} to start{' on ' + on if on else ''}", poll=0.02)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer.start(workdir, persistent=True)
    yield server
    server.stop()


@pytest.fixture
def factory(own_redis: RedisServer, tmp_path: Path) -> Iterator[WorkerFactory]:
    app = client_app(own_redis)
    made = WorkerFactory(own_redis, tmp_path, app)
    yield made
    made.stop_all()
    app.close()


# -- a worker killed with SIGKILL while it runs tasks -------------------------------------------------------
@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent", "solo"])
def test_sigkill_of_a_worker_ends_every_affected_future_by_its_policy(pool: str, factory: WorkerFactory,
                                                                      own_redis: RedisServer) -> None:
    """At most once fails with WorkerLostError, rerun runs exactly once more elsewhere, queued work survives."""
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    doomed = factory.start(pool, None if pool == "solo" else 2, queue=queue)
    client = own_redis.client()
    with CeleryExecutor(settings=settings_for(own_redis, queue)) as executor:
        if pool == "solo":  # one slot: one task per policy, in two rounds
            lost = {"once": executor.submit(ledger_tasks.ledger_once, run, "once", "gate", TIMEOUT)}
            wait_started(lost["once"], doomed.name)
        else:
            lost = {"once": executor.submit(ledger_tasks.ledger_once, run, "once", "gate", TIMEOUT),
                    "rerun": executor.submit(ledger_tasks.ledger_rerun, run, "rerun", "gate", TIMEOUT)}
            for future in lost.values():
                wait_started(future, doomed.name)
        queued = executor.submit(ledger_tasks.ledger_once, run, "queued")
        killed_at = time.monotonic()
        doomed.kill()
        rescuer = factory.start(pool, None if pool == "solo" else 2, queue=queue)

        error = lost["once"].exception(LOST_BOUND_SECONDS)
        assert isinstance(error, WorkerGoneError) and isinstance(error, WorkerLostError)
        assert doomed.name in str(error) and "policy fail" in str(error)
        if "rerun" in lost:
            wait_started(lost["rerun"], rescuer.name)
            release(client, "rerun")
            assert lost["rerun"].result(TIMEOUT) == "rerun"
        assert queued.result(TIMEOUT) == "queued"
        detected = (lost["once"].finished_at or 0) - killed_at
    assert detected < LOST_BOUND_SECONDS
    assert runs(client, run) == {"once": 1, "queued": 1, **({"rerun": 2} if "rerun" in lost else {})}


def test_a_task_held_unstarted_by_a_dead_worker_is_taken_back(factory: WorkerFactory,
                                                              own_redis: RedisServer) -> None:
    """gevent prefetches: a message it took off the queue but never started is sent again, exactly once."""
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    doomed = factory.start("gevent", 1, queue=queue)
    client = own_redis.client()
    with CeleryExecutor(settings=settings_for(own_redis, queue)) as executor:
        busy = executor.submit(ledger_tasks.ledger_once, run, "busy", "gate", TIMEOUT)
        wait_started(busy, doomed.name)
        held = executor.submit(ledger_tasks.ledger_once, run, "held")
        first_id = held.task_id
        wait_until(lambda: claim_of(client, first_id).startswith("held:"), TIMEOUT,
                   "the gevent worker to take the second message")
        doomed.kill()
        factory.start("gevent", 1, queue=queue)
        assert held.result(LOST_BOUND_SECONDS + TIMEOUT) == "held"
        assert isinstance(busy.exception(TIMEOUT), WorkerLostError)
    assert held.task_id != first_id and held.resends == 1
    assert claim_of(client, first_id) == k.CLAIM_CANCELLED  # the stranded copy can never run
    assert runs(client, run) == {"busy": 1, "held": 1}


def test_a_killed_prefork_child_reruns_a_rerun_task_once(factory: WorkerFactory, own_redis: RedisServer) -> None:
    """Celery's WorkerLostError for a killed child follows the same policy: rerun once, then it is final."""
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    worker = factory.start("prefork", 2, queue=queue)
    with CeleryExecutor(settings=settings_for(own_redis, queue)) as executor:
        future = executor.submit(ledger_tasks.ledger_rerun, run, "child", "gate", TIMEOUT)
        for _ in range(2):
            wait_started(future)
            killed = int((future.execution or {})["pid"])
            os.kill(killed, signal.SIGKILL)

            def moved_on(killed: int = killed) -> bool:
                return future.done() or (future.execution or {}).get("pid") not in (None, killed)
            wait_until(moved_on, TIMEOUT, "the rerun to start or the future to end")
        error = future.exception(TIMEOUT)
    assert isinstance(error, WorkerLostError)
    assert runs(own_redis.client(), run) == {"child": 2}
    worker.stop()


# -- Redis restarts in the middle of a run ------------------------------------------------------------------
def test_a_redis_restart_mid_run_loses_nothing(factory: WorkerFactory, own_redis: RedisServer) -> None:
    """Running, queued and finishing-while-down tasks all complete; the listener and workers reconnect."""
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    workers = [factory.start("prefork", 2, queue=queue), factory.start("threads", 4, queue=queue)]
    client = own_redis.client()
    with CeleryExecutor(settings=settings_for(own_redis, queue, send_timeout_seconds=30.0)) as executor:
        gated = [executor.submit(ledger_tasks.ledger_once, run, f"gated-{i}", "gate", TIMEOUT) for i in range(3)]
        for future in gated:
            wait_started(future)
        queued = [executor.submit(ledger_tasks.ledger_rerun, run, f"queued-{i}", "progress", 0.2) for i in range(40)]
        own_redis.stop()
        during = threading.Thread(target=lambda: queued.append(
            executor.submit(ledger_tasks.ledger_once, run, "sent-while-down")))
        during.start()  # this submit retries until Redis is back (send timeout 30 s)
        own_redis.launch()
        during.join(TIMEOUT)
        for i in range(len(gated)):
            release(client, f"gated-{i}")
        results = [f.result(TIMEOUT) for f in gated + queued]
    assert results == [f"gated-{i}" for i in range(3)] + [f"queued-{i}" for i in range(40)] + ["sent-while-down"]
    assert set(runs(client, run).values()) == {1}
    assert all(w.process.poll() is None for w in workers)


# -- Redis unreachable: a clear error within a bounded, configurable time -----------------------------------
@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung Redis, not a refusing one."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_executor_without_redis_fails_fast_and_says_why(kind: str, silent_port: int) -> None:
    port = silent_port if kind == "silent" else free_port()
    url = f"redis://:pw@127.0.0.1:{port}/0"
    settings = ClientSettings(url, "q", None, 60, connect_timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot use Redis at 127.0.0.1:{port}/0"):
        CeleryExecutor(settings=settings)
    assert time.monotonic() - started < 1.0 * 2 + 3  # the configured bound (check + subscribe), not a hang


LOADING_KEYS = 2_000_000
"""Enough data that a restarted Redis says LOADING for about a second here, long enough to be seen."""


def loading(server: RedisServer) -> bool:
    with server.client() as client:
        try:
            client.ping()
        except redis.BusyLoadingError:
            return True
        except redis.ConnectionError:  # not listening yet
            pass
    return False


def rewritten(client: redis.Redis) -> bool:
    state = client.info("persistence")
    return not (state["aof_rewrite_in_progress"] or state["aof_rewrite_scheduled"])


def test_an_executor_started_while_redis_loads_its_data_waits_for_it(tmp_path: Path) -> None:
    """A Redis with persistence answers LOADING for a moment after every restart: the executor waits for it
    (within its connect timeout), where a refused connection is said at once."""
    server = RedisServer.start(tmp_path, persistent=True, extra=("--enable-debug-command", "yes"))
    try:
        with server.client() as client:
            client.execute_command("DEBUG", "POPULATE", LOADING_KEYS)
            client.bgrewriteaof()
            wait_until(lambda: rewritten(client), 60, "the AOF rewrite")
        server.stop()
        server.launch(wait=False)
        wait_until(lambda: loading(server), 15, "redis-server loading its data")
        with CeleryExecutor(settings=settings_for(server, "loading", connect_timeout_seconds=TIMEOUT)) as executor:
            assert not loading(server)
            assert executor.submit(ledger_tasks.ledger_once, "r", "t").cancel()
    finally:
        server.stop()


def test_a_submit_while_redis_is_away_fails_after_the_send_timeout(own_redis: RedisServer) -> None:
    client = own_redis.client()
    with CeleryExecutor(settings=settings_for(own_redis, "nobody", send_timeout_seconds=1.0)) as executor:
        own_redis.stop()
        future = executor.submit(ledger_tasks.ledger_once, "r", "t")
        error = future.exception(TIMEOUT)
        own_redis.launch()
        assert isinstance(error, SendError)
        assert f"127.0.0.1:{own_redis.port}/0" in str(error)
    assert client.llen("nobody") == 0 or claim_of(client, future.task_id) == k.CLAIM_CANCELLED


@pytest.mark.parametrize("command", [["demo"], ["lesson", "futures", "--quick"]])
def test_the_cli_without_redis_prints_one_line_and_exits_non_zero(command: list[str]) -> None:
    env = {**os.environ, c.ENV_REDIS_URL: f"redis://:pw@127.0.0.1:{free_port()}/0", ENV_CONNECT_TIMEOUT: "1"}
    done = subprocess.run([sys.executable, "-m", "producer", *command], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode not in (0, None)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Redis" in lines[0] and "Traceback" not in done.stderr, done.stderr


# -- a worker started before Redis --------------------------------------------------------------------------
def test_a_worker_started_before_redis_waits_then_serves(tmp_path: Path) -> None:
    absent = RedisServer(free_port(), "secret-for-this-test", None, tmp_path)  # planned, not started
    app = client_app(absent)
    factory = WorkerFactory(absent, tmp_path, app)
    worker = factory.start("threads", 2, wait=False)
    try:
        wait_until(lambda: "retrying" in worker.log(), TIMEOUT, "the worker to log that it waits for Redis")
        assert worker.process.poll() is None
        absent.launch()
        factory.wait_ready(worker)
        with CeleryExecutor(settings=settings_for(absent, worker.queue)) as executor:
            assert executor.submit(ledger_tasks.ledger_once, "r", "after-redis").result(TIMEOUT) == "after-redis"
    finally:
        factory.stop_all()
        absent.stop()
        app.close()


# -- shutdown(wait=False, cancel_futures=True) during a flood of submits -----------------------------------
def test_shutdown_cancelling_during_a_flood_of_submits_loses_nothing(factory: WorkerFactory,
                                                                    own_redis: RedisServer) -> None:
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    factory.start("threads", 4, queue=queue)
    executor = CeleryExecutor(settings=settings_for(own_redis, queue))
    futures: list[tuple[str, CeleryFuture]] = []
    refused = threading.Event()

    def flood(thread: int) -> None:
        for i in range(100_000):
            token = f"{thread}-{i}"
            try:
                futures.append((token, executor.submit(ledger_tasks.ledger_once, run, token)))
            except RuntimeError:
                refused.set()
                return

    threads = [threading.Thread(target=flood, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(futures) >= 600, TIMEOUT, "600 submits")
    executor.shutdown(wait=False, cancel_futures=True)
    for thread in threads:
        thread.join(TIMEOUT)
    assert refused.is_set()
    _, not_done = wait([f for _, f in futures], TIMEOUT)
    assert not not_done
    ledger = runs(own_redis.client(), run)
    cancelled = [token for token, f in futures if f.cancelled()]
    finished = [(token, f) for token, f in futures if not f.cancelled()]
    assert cancelled and finished
    assert not [token for token in cancelled if token in ledger]  # a cancelled task never ran
    assert all(f.result() == token and ledger[token] == 1 for token, f in finished)
    with pytest.raises(CancelledError):
        next(f for _, f in futures if f.cancelled()).result()


# -- Redis loses its data mid-run (a restart without persistence) ------------------------------------------
DATA_LOSS_BOUND_SECONDS = 12 + 4 * WATCHDOG_SECONDS + TIMEOUT
"""The grace after a data loss (a heartbeat lifetime and a beat), a few ticks, and the tasks' own time."""


@pytest.fixture
def forgetful_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis without persistence: a restart empties it, as a user's Redis without AOF would be."""
    workdir = tmp_path / "forgetful"
    workdir.mkdir()
    server = RedisServer.start(workdir, persistent=False)
    yield server
    server.stop()


@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent"])
def test_a_redis_that_loses_its_data_mid_run_ends_every_future_truthfully(
        pool: str, forgetful_redis: RedisServer, redis_server: RedisServer, tmp_path: Path) -> None:
    """Running tasks end with their results, never a lost worker; queued ones (their messages wiped) with
    RedisDataLostError; none of those runs later; a cancel is not decided on what the loss took; every
    future ends within the bound. The ledger is kept in the session's Redis, outside the fault."""
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    ledger = redis_server.client()
    app = client_app(forgetful_redis)
    factory = WorkerFactory(forgetful_redis, tmp_path, app)
    worker = factory.start(pool, 2, queue=queue, env={c.ENV_LEDGER_REDIS_URL: redis_server.url()})
    try:
        with CeleryExecutor(settings=settings_for(forgetful_redis, queue)) as executor:
            running = [executor.submit(ledger_tasks.ledger_once, run, f"running-{i}", "gate", TIMEOUT)
                       for i in range(2)]
            for future in running:
                wait_started(future, worker.name)
            queued = [executor.submit(ledger_tasks.ledger_once, run, f"queued-{i}") for i in range(6)]
            lost_at = time.monotonic()
            forgetful_redis.restart()  # SIGTERM, then an empty Redis on the same port
            assert queued[0].cancel() is False  # nothing to decide on: the claims went with the data
            _, pending = wait(queued, timeout=DATA_LOSS_BOUND_SECONDS)
            ended = time.monotonic() - lost_at
            # the running ones have outlived the grace, judged by the worker's reclaims, never lost
            assert not any(f.done() for f in running)
            assert all(claim_of(forgetful_redis.client(), f.task_id).startswith("reclaimed:") for f in running)
            for i in range(len(running)):
                release(ledger, f"running-{i}")
            results = [f.result(TIMEOUT) for f in running]
        assert not pending and ended < DATA_LOSS_BOUND_SECONDS
        assert results == ["running-0", "running-1"]
        for future in queued:
            error = future.exception()
            assert isinstance(error, RedisDataLostError) and not isinstance(error, WorkerLostError), error
            assert "lost its data" in str(error)
        assert worker.process.poll() is None
        assert not [token for token in runs(ledger, run) if token.startswith("queued")]  # none ran, not even late
    finally:
        factory.stop_all()
        app.close()


# -- SIGKILL of a prefork worker's main process ---------------------------------------------------------------
def process_gone(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (it runs no code any more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def test_killing_the_prefork_main_process_takes_its_children_with_it(factory: WorkerFactory,
                                                                    own_redis: RedisServer) -> None:
    """The children running tasks die with it, so the futures that say "lost" are right: no side effect of
    those runs comes after (the ledger's finished marks), and no child is left running."""
    queue, run = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    worker = factory.start("prefork", 2, queue=queue)
    client = own_redis.client()
    with CeleryExecutor(settings=settings_for(own_redis, queue)) as executor:
        slow = [executor.submit(ledger_tasks.ledger_once, run, f"slow-{i}", "slow", 30.0) for i in range(2)]
        for future in slow:
            wait_started(future, worker.name)
        children = [int((f.execution or {})["pid"]) for f in slow]
        assert worker.process.pid not in children
        os.kill(worker.process.pid, signal.SIGKILL)  # the main process only, as an OOM kill would
        worker.process.wait(TIMEOUT)
        wait_until(lambda: all(process_gone(pid) for pid in children), 10, "the children to die with it")
        errors = [f.exception(LOST_BOUND_SECONDS) for f in slow]
    assert all(isinstance(error, WorkerGoneError) for error in errors), errors
    assert client.hgetall(ledger_tasks.finished_key(run)) == {}  # no run went on to its end
    assert runs(client, run) == {"slow-0": 1, "slow-1": 1}
