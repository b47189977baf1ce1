"""``python -m worker`` as a user runs it: exit codes and the one line that explains a failure."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from producer.processes import RedisServer, WorkerProcess, free_port


def worker_cmd(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_") and k != "REDIS_URL"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "worker", *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--pool", "bogus"], {}, "--pool: unknown pool 'bogus'; valid pools: prefork, threads, gevent, solo"),
        ([], {"WORKER_POOL": "bogus"}, "WORKER_POOL: unknown pool 'bogus'; valid pools: prefork, threads, gevent"),
        (["--concurrency", "0"], {}, "--concurrency must be a positive integer, got '0'"),
        (["--concurrency", "-3"], {}, "--concurrency must be a positive integer, got '-3'"),
        (["--concurrency", "many"], {}, "--concurrency must be a positive integer, got 'many'"),
        ([], {"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY must be a positive integer, got '0'"),
        (["--pool", "solo", "-c", "2"], {}, "solo pool always runs 1 task at a time"),
        (["--redis-url", "http://nope"], {}, "--redis-url must start with redis://, rediss:// or sentinel://"),
        ([], {"REDIS_URL": "sentinel://h:26379"},
         "REDIS_SENTINEL_MASTER must name the master the sentinels monitor (their 'sentinel monitor <name> ...'), "
         "since REDIS_URL is a sentinel:// URL"),
        ([], {"REDIS_URL": "redis://h:0/0"}, "REDIS_URL has a bad port (1-65535)"),
        (["--name", "w1"], {}, "--name must be name@host"),
        ([], {"WORKER_NAME": "w1@%h"}, "WORKER_NAME must be name@host"),
        (["--queues", "a b"], {}, "--queues must be comma-separated queue names"),
        ([], {"WORKER_QUEUES": ","}, "WORKER_QUEUES names no queue"),
        (["--loglevel", "chatty"], {}, "--loglevel must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ([], {"WORKER_LOGLEVEL": "loud"}, "WORKER_LOGLEVEL must be one of DEBUG"),
        (["--connect-attempts", "-1"], {}, "--connect-attempts must be a whole number ≥ 0, got '-1'"),
        ([], {"WORKER_CONNECT_ATTEMPTS": "x"}, "WORKER_CONNECT_ATTEMPTS must be a whole number ≥ 0"),
        ([], {"WORKER_ALLOWLIST": "math:sqrt"}, "WORKER_ALLOWLIST has the pattern 'math:sqrt', which can never match"),
        ([], {"RESULT_TTL_SECONDS": "0"}, "RESULT_TTL_SECONDS must be a whole number of seconds from 1 to 31536000"),
        (["--check"], {"RESULT_TTL_SECONDS": "forever"}, "RESULT_TTL_SECONDS must be a whole number of seconds"),
        (["--frobnicate"], {}, "unrecognized arguments: --frobnicate"),
        ([], {"WORKER_MAX_MESSAGE_BYTES": "1000"},
         "WORKER_MAX_MESSAGE_BYTES must be a whole number of bytes ≥ 65536, got '1000'"),
    ],
)
def test_bad_input_exits_2_with_a_message(args: list[str], env: dict[str, str], message: str) -> None:
    """Before Celery starts: argparse's usage, then one line that names the input and what it allows."""
    done = worker_cmd(*args, env=env)
    assert done.returncode == 2
    naming = [line for line in done.stderr.splitlines() if message in line]
    assert len(naming) == 1 and naming[0].startswith("python -m worker: error: "), done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_redis_retries_visibly_then_gives_up() -> None:
    port = free_port()
    done = worker_cmd("--connect-attempts", "2", env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert done.returncode == 1
    assert f"cannot use Redis at 127.0.0.1:{port}/0: Connection refused; retrying in 0.5s (attempt 1)" in done.stderr
    assert "giving up after 2 attempt(s)" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_password_is_one_clear_line(redis_server: RedisServer) -> None:
    url = f"redis://:wrong@127.0.0.1:{redis_server.port}/0"
    done = worker_cmd("--connect-attempts", "1", env={"REDIS_URL": url})
    assert done.returncode == 1
    assert f"cannot use Redis at 127.0.0.1:{redis_server.port}/0: it refused the password" in done.stderr
    assert "wrong" not in done.stderr and "Traceback" not in done.stderr


def test_missing_password_is_named(redis_server: RedisServer) -> None:
    done = worker_cmd("--connect-attempts", "1", env={"REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0"})
    assert done.returncode == 1
    assert "needs a password" in done.stderr or "refused the password" in done.stderr


def test_check_is_0_for_a_live_worker_and_1_otherwise(redis_server: RedisServer, pool_worker: WorkerProcess) -> None:
    env = {"REDIS_URL": redis_server.url()}
    assert worker_cmd("--check", "--name", pool_worker.name, env=env).returncode == 0
    missing = worker_cmd("--check", "--name", "nobody@nowhere", env=env)
    assert missing.returncode == 1
    assert "nobody@nowhere did not answer a ping" in missing.stderr


def test_check_is_1_when_redis_is_down() -> None:
    done = worker_cmd("--check", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert done.returncode == 1
    assert "Connection refused" in done.stderr


def test_validate_prints_the_settings_in_one_line_and_exits_0() -> None:
    done = worker_cmd("--validate", env={"WORKER_POOL": "gevent", "REDIS_URL": "redis://:secret@redis:6379/0"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("worker settings are valid: pool gevent, concurrency 100")
    assert "secret" not in done.stdout and done.stderr == ""


def test_validate_refuses_a_bad_pool_with_the_same_line() -> None:
    done = worker_cmd("--validate", env={"WORKER_POOL": "bogus"})
    assert done.returncode == 2
    assert "WORKER_POOL: unknown pool 'bogus'; valid pools: prefork, threads, gevent, solo" in done.stderr
