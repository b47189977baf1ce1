"""Our versions of CPython's three interpreter-exit tests, which import the executor from
``concurrent.futures`` in a fresh interpreter and so cannot run on a third-party executor as they are."""

from __future__ import annotations

import os
import subprocess
import sys

from producer.processes import RedisServer, WorkerProcess

PRELUDE = """
from celery_futures import CeleryExecutor
from worker.tasks import demo as tasks
def say(text):
    return lambda future: print(text if future.result() == 0.2 else "wrong", flush=True)
"""


def run_script(body: str, redis_server: RedisServer, worker: WorkerProcess) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_server.url(), "PRODUCER_QUEUE": worker.queue}
    return subprocess.run([sys.executable, "-c", body], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_interpreter_exit_waits_for_submitted_work(redis_server: RedisServer, pool_worker: WorkerProcess) -> None:
    """CPython's test_interpreter_shutdown: never shut down explicitly; exit still completes the work."""
    done = run_script(PRELUDE + """
t = CeleryExecutor(max_workers=5)
t.submit(tasks.io_sleep, 0.2).add_done_callback(say("apple"))
""", redis_server, pool_worker)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "apple", "")


def test_submit_after_interpreter_shutdown(redis_server: RedisServer, pool_worker: WorkerProcess) -> None:
    """CPython's test_submit_after_interpreter_shutdown: an atexit hook that runs after ours cannot submit."""
    done = run_script("""
import atexit
@atexit.register
def run_last():
    try:
        t.submit(id, None)
    except RuntimeError:
        print("runtime-error")
        raise
""" + PRELUDE + """
t = CeleryExecutor(max_workers=5)
t.submit(tasks.noop).result(30)
""", redis_server, pool_worker)
    assert "RuntimeError: cannot schedule new futures after interpreter shutdown" in done.stderr
    assert done.stdout.strip() == "runtime-error"


def test_shutdown_without_wait_does_not_hang_at_exit(redis_server: RedisServer, pool_worker: WorkerProcess) -> None:
    """CPython's test_hang_gh83386: shutdown(wait=False) with running futures, then exit."""
    done = run_script(PRELUDE + """
t = CeleryExecutor(max_workers=3)
t.submit(tasks.io_sleep, 0.2).add_done_callback(say("apple"))
t.shutdown(wait=False)
""", redis_server, pool_worker)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "apple", "")
