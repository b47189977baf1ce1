"""``python -m producer lesson NAME`` as a user runs it: real Redis, one real worker per pool, the real CLI in a
subprocess.

Each lesson's ``--quick`` run must exit 0, print the rows it promises (``--progress raw`` lines included),
and, under ``--json``, report the deterministic facts it promises: results in input order, no update lost
under a lock, cancelled tasks that never ran, a gevent trace that interleaves. Timings are never asserted.
Ctrl-C (SIGINT to the process) must cancel what is queued and exit 130, and bad usage must exit 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from celery_futures.protocol.pools import POOLS
from producer.lessons import LESSONS
from producer.processes import RedisServer, WorkerProcess, wait_until
from producer.session import Session
from producer.terminal import Terminal
from worker.constants import POOL_QUEUES

RUN_TIMEOUT = 120


@pytest.fixture(scope="session")
def pool_workers(pool_queue_workers: dict[str, WorkerProcess]) -> dict[str, WorkerProcess]:
    return pool_queue_workers


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lesson-results")


def producer_env(results_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WORKER_") and k not in {"REDIS_URL", "PRODUCER_QUEUE"}}
    env.update({"COLUMNS": "200", "LESSON_RESULTS_DIR": str(results_dir), "PYTHONUNBUFFERED": "1"})
    return env


def producer(redis_server: RedisServer, results_dir: Path, *args: str, json_output: bool = False,
             db: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; ``--redis-url`` is given unless ``env`` sets REDIS_URL itself."""
    command = [sys.executable, "-m", "producer"]
    command += [] if env and "REDIS_URL" in env else ["--redis-url", redis_server.url(db)]
    command += ["--json", *args] if json_output else list(args)
    return subprocess.run(command, env={**producer_env(results_dir), **(env or {})}, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, check=False)


def lesson_json(redis_server: RedisServer, results_dir: Path, name: str) -> dict[str, Any]:
    done = producer(redis_server, results_dir, "lesson", name, "--quick", "--progress", "off", json_output=True)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    failed = [check for check, held in document["checks"].items() if not held]
    assert document["ok"] and not failed, failed
    return document


def lesson_text(redis_server: RedisServer, results_dir: Path, name: str) -> subprocess.CompletedProcess[str]:
    done = producer(redis_server, results_dir, "lesson", name, "--quick", "--progress", "raw")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{name}: all " in done.stdout and " checks held" in done.stdout
    return done


# -- one test per lesson: the human run's rows and progress lines, then the JSON run's facts ---------------

def test_futures(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer, results_dir: Path) -> None:
    text = lesson_text(redis_server, results_dir, "futures")
    for expected in ("main: unprocessed results <generator object", "main: results: [0.3, 0.2, 0.1]",
                     "5: value returned: 0.5", "6: error returned: task 6 failed on purpose", "7: canceled",
                     "f.exception() -> DemoError", "Timeline"):
        assert expected in text.stdout
    assert "map: 3/3" in text.stderr.splitlines()

    doc = lesson_json(redis_server, results_dir, "futures")
    assert doc["map"]["results"] == [0.3, 0.2, 0.1]
    assert sorted(doc["as_completed"]["completed"]) == [0.1, 0.2, 0.3]
    assert doc["cancel"] == {"pending": True, "running": False, "cancelled_task_runs": 0}
    assert doc["exception"]["type"] == "DemoError"
    ran = [row for row in doc["timeline"] if row["outcome"] != "cancelled"]
    assert ran and all(row["pool"] == "threads" and row["worker"] == pool_workers["threads"].name for row in ran)
    assert [row["outcome"] for row in doc["timeline"]].count("cancelled") == 1


def test_pools(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer, results_dir: Path) -> None:
    text = lesson_text(redis_server, results_dir, "pools")
    assert "Makespan against the ideal" in text.stdout
    for pool in POOL_QUEUES:
        assert f"CPU-bound on {pool}: 4/4" in text.stderr.splitlines()
        assert f"IO-bound on {pool}: 20/20" in text.stderr.splitlines()

    doc = lesson_json(redis_server, results_dir, "pools")
    rows = {(row["pool"], row["work"]): row for row in doc["pools"]}
    assert set(rows) == {(pool, work) for pool in POOL_QUEUES for work in ("CPU", "IO")}
    assert all(rows[pool, "CPU"]["slots"] == (pool_workers[pool].concurrency or 1) for pool in POOL_QUEUES)
    assert all(Path(path).is_file() and Path(path).parent == results_dir for path in doc["plots"])


def test_gevent(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer, results_dir: Path) -> None:
    text = lesson_text(redis_server, results_dir, "gevent")
    for expected in ("Running in foo", "Implicit context switch back to bar", "the lines interleave",
                     "the lines do not interleave", "blocks unpatched"):
        assert expected in text.stdout
    assert "neighbours: 3/3" in text.stderr.splitlines()

    doc = lesson_json(redis_server, results_dir, "gevent")
    interleaved = [row["task"] for row in doc["trace_with_yield"]]
    assert interleaved in (["foo", "bar", "foo", "bar"], ["bar", "foo", "bar", "foo"])
    grouped = [row["task"] for row in doc["trace_without_yield"]]
    assert grouped in (["foo", "foo", "bar", "bar"], ["bar", "bar", "foo", "foo"])
    assert len(doc["neighbours"]) == 3
    assert all(row["same process"] == "yes" for row in doc["neighbours"])


def test_asyncio(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer, results_dir: Path) -> None:
    text = lesson_text(redis_server, results_dir, "asyncio")
    for expected in ("T-minus 3 (B)", "remote tasks (wrap_future)", "f.result() inside a coroutine"):
        assert expected in text.stdout
    assert "gather of remote tasks: 20/20" in text.stderr.splitlines()

    doc = lesson_json(redis_server, results_dir, "asyncio")
    remote = [row["remote: await wrap_future(submit)"] for row in doc["countdown"]]
    assert sorted(remote) == sorted(["T-minus 2 (A)", "T-minus 1 (A)", "T-minus 3 (B)", "T-minus 2 (B)",
                                     "T-minus 1 (B)"])
    assert all(row["that tick ran on"].startswith("gevent ") for row in doc["countdown"])
    assert [row["count"] for row in doc["gather"]] == [20, 20]


def test_thread_safety(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer,
                       results_dir: Path) -> None:
    text = lesson_text(redis_server, results_dir, "thread-safety")
    assert "threads: threading.Lock" in text.stdout
    assert "threading.Lock on threads: 8/8" in text.stderr.splitlines()

    doc = lesson_json(redis_server, results_dir, "thread-safety")
    rows = {row["pool: variant"]: row for row in doc["counters"]}
    for variant in ("threads: threading.Lock", "threads: Redis INCR", "prefork: no lock, own memory per process",
                    "gevent: no lock, no yield inside"):
        assert rows[variant]["lost updates"] == 0, variant
        assert rows[variant]["counted"] == 1600, variant
    assert rows["threads: no lock"]["lost updates"] >= 0  # usually many; how many is timing, never asserted


def test_cancel(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer, results_dir: Path) -> None:
    text = lesson_text(redis_server, results_dir, "cancel")
    assert "interrupt() of running tasks" in text.stdout
    assert all(f"cancel and interrupt on {pool}: 6/6" in text.stderr.splitlines() for pool in POOL_QUEUES)

    doc = lesson_json(redis_server, results_dir, "cancel")
    for row in doc["cancel"]:
        assert row["cancel() True"] == row["queued"] == 3
        assert row["times they ran"] == 0
        assert row["left in the queue"] == 0
    methods = {(row["pool"], row["task"]): row["interrupt()"] for row in doc["interrupt"]}
    assert methods == {(pool, kind): POOLS[pool].interrupt.value for pool in POOL_QUEUES
                       for kind in ("checks-flag", "sleeps", "computes")}
    finished = {(row["pool"], row["task"]): row["body finished"] for row in doc["interrupt"]}
    assert all(finished[pool, "checks-flag"] == "no" for pool in POOL_QUEUES)
    assert all(finished[pool, kind] == "yes" for pool in ("threads", "solo") for kind in ("sleeps", "computes"))


# -- the same lessons from Python, Ctrl-C, and bad usage ----------------------------------------------------

def test_a_lesson_runs_from_python(pool_workers: dict[str, WorkerProcess], redis_server: RedisServer) -> None:
    terminal = Terminal(json_output=True, progress="off")
    session = Session(terminal, redis_url=redis_server.url(), quick=True)
    try:
        assert LESSONS["gevent"](session)
    finally:
        session.close(cancel=True)
    assert terminal.document["checks"]["with gevent.sleep(0) the trace interleaves"]


def test_ctrl_c_cancels_what_is_queued_and_exits_130(pool_workers: dict[str, WorkerProcess],
                                                     redis_server: RedisServer, redis_client: redis.Redis,
                                                     results_dir: Path) -> None:
    """SIGINT while the full pools lesson has CPU tasks queued behind prefork's two slots."""
    command = [sys.executable, "-m", "producer", "--redis-url", redis_server.url(), "lesson", "pools",
               "--progress", "raw"]
    # As a terminal would start it: a suite run in the background (``cmd &`` without job control) has SIGINT
    # ignored, and an ignored signal stays ignored across exec, so Python would never raise KeyboardInterrupt.
    # A handler (unlike SIG_IGN) is reset to the default at exec, which is what the child must start with.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, env=producer_env(results_dir), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    seen: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if line.startswith("CPU-bound on prefork: 1/"):
                break
        queued = int(redis_client.llen("prefork"))
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert queued > 0, "".join(seen)
    assert process.returncode == 130, "".join(seen) + rest
    assert "interrupted: cancelling the tasks that have not started" in rest
    assert "Traceback" not in rest
    wait_until(lambda: all(redis_client.llen(pool) == 0 for pool in POOL_QUEUES), 30, "every pool queue empty")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lesson", "nope"], "'nope' is not one of 'futures', 'pools', 'gevent'"),
        (["lesson", "futures", "--bogus"], "No such option '--bogus'"),
        (["lesson", "futures", "--progress", "sideways"], "Invalid value for '--progress'"),
        (["lesson"], "Missing argument '{futures|pools|gevent|asyncio|thread-safety|cancel}'"),
        (["--queue", "a b", "demo"], "Invalid value for '--queue' (env var: 'PRODUCER_QUEUE'): --queue must be a "
                                     "queue name of letters, digits"),
        (["--redis-url", "http://x", "demo"], "Invalid value for '--redis-url' (env var: 'REDIS_URL'): --redis-url "
                                              "must start with redis://, rediss:// or sentinel://"),
        (["bench", "--out", __file__], "Invalid value for '--out'"),
    ],
)
def test_bad_usage_exits_2_with_a_message(redis_server: RedisServer, results_dir: Path, args: list[str],
                                          message: str) -> None:
    done = producer(redis_server, results_dir, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "http://x"},
         "REDIS_URL must start with redis://, rediss:// or sentinel://, got 'http://x'"),
        ({"REDIS_URL": "sentinel://:secret@h:26379"},
         "REDIS_SENTINEL_MASTER must name the master the sentinels monitor"),
        ({"REDIS_URL": "redis://:secret@h:0/0"}, "REDIS_URL has a bad port (1-65535): 'redis://:***@h:0/0'"),
        ({"PRODUCER_QUEUE": "a b"}, "PRODUCER_QUEUE must be a queue name of letters, digits"),
        ({"PRODUCER_CONNECT_TIMEOUT": "0"}, "PRODUCER_CONNECT_TIMEOUT must be a number of seconds > 0"),
        ({"PRODUCER_SEND_TIMEOUT": "soon"}, "PRODUCER_SEND_TIMEOUT must be a number of seconds > 0"),
        ({"PRODUCER_MAX_PAYLOAD_BYTES": "1MB"}, "PRODUCER_MAX_PAYLOAD_BYTES must be a whole number of bytes"),
        ({"WORKER_ALLOWLIST": "math:sqrt"}, "WORKER_ALLOWLIST has the pattern 'math:sqrt', which can never match"),
        ({"RESULT_TTL_SECONDS": "0"}, "RESULT_TTL_SECONDS must be a whole number of seconds from 1"),
    ],
)
def test_bad_environment_is_one_line_and_exit_2(redis_server: RedisServer, results_dir: Path,
                                                env: dict[str, str], message: str) -> None:
    """Before anything runs or prints: exactly one line, naming the variable and what it allows."""
    done = producer(redis_server, results_dir, "lesson", "futures", "--quick", env=env)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), done.stderr
    assert done.stdout == ""


def test_help_lists_every_lesson(redis_server: RedisServer, results_dir: Path) -> None:
    done = producer(redis_server, results_dir, "lesson", "--help")
    assert done.returncode == 0
    unwrapped = "".join(done.stdout.split())  # click wraps the usage line, even inside "thread-safety"
    assert all(name in unwrapped for name in LESSONS)
    assert "--quick" in done.stdout and "--progress" in done.stdout


def test_no_worker_on_a_needed_queue_is_exit_1(redis_server: RedisServer, results_dir: Path) -> None:
    """Database 1 of the same Redis: no worker listens there (Celery's broadcasts are per database)."""
    done = producer(redis_server, results_dir, "lesson", "gevent", "--quick", db=1)
    assert done.returncode == 1
    assert "no worker answers on queue(s) gevent" in done.stderr
    assert "Traceback" not in done.stderr
