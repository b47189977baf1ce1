"""Every pool, a real worker process, a real Redis: the demo tasks do what they promise."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import redis
from celery import Celery

from celery_futures import CeleryExecutor, NotAllowedError
from celery_futures.protocol import keys as k
from celery_futures.protocol.claims import claim_for_cancel
from celery_futures.protocol.keys import BEAT_SECONDS, RUNNER_TASK
from celery_futures.protocol.pools import POOLS
from producer.processes import WorkerFactory, WorkerProcess, wait_until
from worker import constants as c
from worker.errors import DemoError

TIMEOUT = 30


def run(app: Celery, worker: WorkerProcess, name: str, *args: Any, **kwargs: Any) -> Any:
    """Send a demo task (or, for ``call``, the library's runner) with stock Celery, as any client could."""
    task = RUNNER_TASK if name == "call" else f"worker.tasks.demo.{name}"
    result = app.send_task(task, args=args, kwargs=kwargs, queue=worker.queue)
    return result.get(timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("task", "args", "expected"),
    [
        ("noop", (), None),
        ("cpu_bound", (1000,), sum(i * i % 7 for i in range(1000))),
        ("io_sleep", (0.01,), 0.01),
        ("slow", (0.05,), 0.05),
        ("progress", (3,), 3),
        ("call", ("builtins:pow", [2, 10], {}), 1024),
        ("call", ("builtins:divmod", [7, 2], {}), (3, 1)),
        ("call", ("worker.functions:square", [], {"x": 3}), 9),
    ],
)
def test_demo_task_result_arrives(celery_client: Celery, pool_worker: WorkerProcess, task: str,
                                  args: tuple[Any, ...], expected: Any) -> None:
    assert run(celery_client, pool_worker, task, *args) == expected


def test_io_redis_wait_really_waits_in_redis(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    waited = run(celery_client, pool_worker, "io_redis_wait", 0.2)
    assert waited >= 0.19


def test_gate_returns_what_the_test_pushed(celery_client: Celery, pool_worker: WorkerProcess,
                                           redis_client: redis.Redis) -> None:
    name = uuid.uuid4().hex
    result = celery_client.send_task("worker.tasks.demo.gate", args=(name, 20), queue=pool_worker.queue)
    redis_client.lpush(f"{c.GATE_PREFIX}{name}", "opened")
    assert result.get(timeout=TIMEOUT) == "opened"


def test_record_counts_runs(celery_client: Celery, pool_worker: WorkerProcess, redis_client: redis.Redis) -> None:
    name = uuid.uuid4().hex
    assert run(celery_client, pool_worker, "record", name) == 1
    assert run(celery_client, pool_worker, "record", name) == 2
    assert int(redis_client.get(f"{c.RECORD_PREFIX}{name}") or 0) == 2


def test_inspect_stats_reports_the_pool_asked_for(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    stats = celery_client.control.inspect(destination=[pool_worker.name], timeout=5).stats()
    assert stats is not None
    pool = stats[pool_worker.name]["pool"]
    spec = POOLS[pool_worker.pool]
    assert pool["implementation"] == spec.celery_impl
    assert pool["max-concurrency"] == (pool_worker.concurrency or spec.default_concurrency)


def test_gevent_worker_is_really_monkey_patched(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    report = run(celery_client, pool_worker, "whoami")
    assert report["pool"] == pool_worker.pool
    assert report["hostname"] == pool_worker.name
    patched = {name: module.startswith("gevent") for name, module in report["patched"].items()}
    if pool_worker.pool == "gevent":
        assert patched == {"socket.socket": True, "time.sleep": True, "threading.Lock": True}
        assert report["greenlet"] is not None
    else:
        assert not any(patched.values())
        assert report["greenlet"] is None


def test_allowlist_admits_and_refuses(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    assert run(celery_client, pool_worker, "call", "math:sqrt", [16], {}) == 4.0
    expected = r"os\.system is not in the worker allowlist \(celery_futures_allowlist=.*math\.\*"
    with pytest.raises(NotAllowedError, match=expected):
        run(celery_client, pool_worker, "call", "os:system", ["true"], {})
    with pytest.raises(NotAllowedError, match=r"builtins\.eval"):
        run(celery_client, pool_worker, "call", "builtins:eval", ["1"], {})


def test_runner_refuses_results_json_cannot_carry(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    with pytest.raises(TypeError, match=r"the result of worker\.functions:unique \(set\) is not JSON-serializable"):
        run(celery_client, pool_worker, "call", "worker.functions:unique", [[1, 1]], {})


@pytest.mark.parametrize(("exc_type", "exc_class"), [("ValueError", ValueError), ("KeyError", KeyError),
                                                      ("ZeroDivisionError", ZeroDivisionError)])
def test_failing_task_keeps_builtin_type_and_message(celery_client: Celery, pool_worker: WorkerProcess,
                                                     exc_type: str, exc_class: type[Exception]) -> None:
    with pytest.raises(exc_class, match="went wrong"):
        run(celery_client, pool_worker, "fail", exc_type, "it went wrong")


def test_failing_task_keeps_our_custom_type(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    with pytest.raises(DemoError, match="custom trouble"):
        run(celery_client, pool_worker, "fail_custom", "custom trouble")


READY = ("SUCCESS", "FAILURE", "REVOKED")


def collect_states(pubsub: redis.client.PubSub, timeout: float = TIMEOUT,
                   until: tuple[str, ...] = READY) -> list[dict[str, Any]]:
    """Every state message published for one task, in order, until one in ``until`` arrives."""
    states: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not states or states[-1]["status"] not in until:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no final state after {[s['status'] for s in states]}")
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None:
            states.append(json.loads(message["data"]))
    return states


def test_progress_states_arrive_in_order(celery_client: Celery, pool_worker: WorkerProcess,
                                         redis_client: redis.Redis) -> None:
    task_id = str(uuid.uuid4())
    with redis_client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
        pubsub.subscribe(f"celery-task-meta-{task_id}")
        celery_client.send_task("worker.tasks.demo.progress", args=(4,), task_id=task_id, queue=pool_worker.queue)
        states = collect_states(pubsub)
    assert [s["status"] for s in states] == ["STARTED", "PROGRESS", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"]
    assert [s["result"]["current"] for s in states[1:5]] == [1, 2, 3, 4]
    assert states[0]["result"]["pool"] == pool_worker.pool
    assert states[-1]["result"] == 4


def test_claimed_cancel_means_the_task_never_runs(celery_client: Celery, pool_worker: WorkerProcess,
                                                  redis_client: redis.Redis) -> None:
    task_id, name = str(uuid.uuid4()), uuid.uuid4().hex
    marker = k.client_key(uuid.uuid4().hex[:12])
    redis_client.set(marker, "1", ex=60)  # what an executor writes when it starts
    assert claim_for_cancel(redis_client, [task_id], ttl=60, marker=marker)[0].won
    with redis_client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
        pubsub.subscribe(f"celery-task-meta-{task_id}")
        celery_client.send_task("worker.tasks.demo.record", args=(name,), task_id=task_id, queue=pool_worker.queue)
        states = collect_states(pubsub)
    assert [s["status"] for s in states] == ["REVOKED"]
    assert run(celery_client, pool_worker, "record", name) == 1  # the cancelled run left no count behind


def test_heartbeat_key_names_this_boot(celery_client: Celery, pool_worker: WorkerProcess,
                                       redis_client: redis.Redis) -> None:
    boot = run(celery_client, pool_worker, "whoami")["boot"]
    assert boot
    assert redis_client.get(f"{k.ALIVE_PREFIX}{pool_worker.name}") == boot.encode()
    assert 0 < int(redis_client.ttl(f"{k.ALIVE_PREFIX}{pool_worker.name}")) <= 10
    assert redis_client.sismember(k.ALIVE_NODES, pool_worker.name)


def test_a_client_reads_heartbeats_from_the_registry_not_a_scan_of_the_keyspace(
    celery_client: Celery, worker_factory: WorkerFactory, redis_client: redis.Redis
) -> None:
    """The watchdog asks for every heartbeat at each tick: a SCAN for them would cost Redis CPU in proportion
    to every key it holds (each stored result), for every producer. A registered node whose key expired is a
    worker that stopped beating: it is dropped from the registry, and the live ones stay."""
    worker = worker_factory.start("solo", concurrency=1)
    ghost = f"ghost@{uuid.uuid4().hex[:8]}"
    redis_client.sadd(k.ALIVE_NODES, ghost)  # registered, but its key is gone: it stopped beating
    with redis_client.pipeline(transaction=False) as pipe:
        for index in range(5_000):
            pipe.set(f"cfx:test:filler:{index}", b"x", ex=60)
        pipe.execute()

    def scans() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))

    with CeleryExecutor(celery_client) as executor:
        before = scans()
        boots = executor._evidence.live_boots()  # what the watchdog reads at every tick
        assert scans() == before
    assert boots.get(k.alive_key(worker.name).encode()) == redis_client.get(k.alive_key(worker.name))
    assert not redis_client.sismember(k.ALIVE_NODES, ghost)
    assert redis_client.sismember(k.ALIVE_NODES, worker.name)
    worker.stop()


@pytest.mark.parametrize("pool", ["prefork", "gevent"])
def test_heartbeat_key_goes_with_a_clean_shutdown(worker_factory: WorkerFactory, redis_client: redis.Redis,
                                                  pool: str) -> None:
    worker = worker_factory.start(pool, concurrency=2)
    assert redis_client.exists(f"{k.ALIVE_PREFIX}{worker.name}")
    worker.stop()
    assert worker.process.returncode == 0
    assert not redis_client.exists(f"{k.ALIVE_PREFIX}{worker.name}")
    assert not redis_client.sismember(k.ALIVE_NODES, worker.name)


def test_heartbeat_keeps_beating_while_a_gevent_task_blocks_the_loop(
    celery_client: Celery, worker_factory: WorkerFactory, redis_client: redis.Redis
) -> None:
    """The beat comes from a real OS thread, so a greenlet that blocks the hub cannot silence it."""
    worker = worker_factory.start("gevent", concurrency=2)
    key = f"{k.ALIVE_PREFIX}{worker.name}"
    block_seconds = 4 * BEAT_SECONDS
    with redis_client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
        task_id = str(uuid.uuid4())
        pubsub.subscribe(f"celery-task-meta-{task_id}")
        celery_client.send_task("worker.tasks.demo.block_unpatched", args=(block_seconds,), task_id=task_id,
                                queue=worker.queue)
        started = collect_states(pubsub, until=("STARTED",))
        redis_client.delete(key)  # the hub is blocked from now on; only the native thread can set it again
        wait_until(lambda: bool(redis_client.exists(key)), timeout=block_seconds, what="a heartbeat")
        assert pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is None  # still blocked
        states = started + collect_states(pubsub)
    assert [s["status"] for s in states] == ["STARTED", "SUCCESS"]
    worker.stop()


def test_worker_answers_pings_after_its_pubsub_connection_is_killed(
    celery_client: Celery, pool_worker: WorkerProcess, redis_client: redis.Redis
) -> None:
    """A Redis restart drops every pub/sub client; Celery's gevent pidbox alone never came back."""
    redis_client.client_kill_filter(_type="pubsub")
    wait_until(lambda: bool(celery_client.control.ping(destination=[pool_worker.name], timeout=0.5)), 30,
               f"{pool_worker.name} to answer pings again")


def test_runner_cannot_be_walked_to_exec(celery_client: Celery, pool_worker: WorkerProcess, tmp_path: Any) -> None:
    """The reviewer's exploit, over the wire: an admitted module's imports must not lead to exec."""
    witness = tmp_path / "pwned"
    code = f"open({str(witness)!r}, 'w').write('x')"
    with pytest.raises(NotAllowedError, match=r"names builtins\.exec"):
        run(celery_client, pool_worker, "call", "worker.functions:json.codecs.builtins.exec", [code], {})
    assert not witness.exists()


def test_runner_calls_monkey_patched_stdlib_functions(celery_client: Celery, pool_worker: WorkerProcess) -> None:
    assert run(celery_client, pool_worker, "call", "time:sleep", [0.01], {}) is None
