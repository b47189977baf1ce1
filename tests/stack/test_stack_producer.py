"""The host's CeleryExecutor against the containerised workers, through the published Redis port, and the
stack's own producer service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import wait

import pytest
from pytest_docker.plugin import Services

from celery_futures import CeleryExecutor
from celery_futures.client.errors import RemoteTraceback
from producer.cluster import capacity, queue_of, workers
from producer.demo import wait_running
from producer.gates import new_gate_name, open_gate, record_count
from tests.stack.conftest import ENV_FILE, Compose, parse_env
from worker import functions
from worker.app import client_app
from worker.errors import DemoError
from worker.tasks import demo as tasks

pytestmark = pytest.mark.stack

TIMEOUT = 60


@pytest.fixture(scope="module")
def executor(stack: Compose, docker_services: Services, docker_ip: str) -> Iterator[CeleryExecutor]:
    password = parse_env(ENV_FILE.read_text())["REDIS_PASSWORD"]
    port = docker_services.port_for("redis", 6379)
    with CeleryExecutor(client_app(f"redis://:{password}@{docker_ip}:{port}/0")) as created:
        yield created


def test_host_executor_gets_results_from_the_containers(executor: CeleryExecutor) -> None:
    assert list(executor.map(pow, [2, 2, 2], [5, 6, 7], timeout=TIMEOUT)) == [32, 64, 128]
    future = executor.submit(tasks.whoami)
    assert future.result(TIMEOUT)["pool"] == "prefork"


def test_failures_arrive_with_the_container_traceback(executor: CeleryExecutor) -> None:
    error = executor.submit(tasks.fail_custom, "from a container").exception(TIMEOUT)
    assert isinstance(error, DemoError) and str(error) == "from a container"
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "/opt/venv/" in str(error.__cause__)  # the worker's own file paths, inside the image


def test_cancel_is_exact_against_the_containers(executor: CeleryExecutor) -> None:
    slots = capacity(workers(executor), queue_of(executor))
    gate, witness = new_gate_name(), f"stack-{uuid.uuid4().hex}"
    blockers = [executor.submit(tasks.gate, gate, TIMEOUT) for _ in range(slots)]
    wait_running(blockers)
    queued = executor.submit(tasks.record, witness)
    assert queued.cancel() is True
    open_gate(executor.redis, gate, slots)
    wait(blockers, timeout=TIMEOUT)
    assert record_count(executor.redis, witness) == 0


def test_the_stack_producer_runs_its_demo(stack: Compose) -> None:
    output = stack("run", "--rm", "producer")
    assert "demo: all checks passed" in output


def test_any_producer_command_runs_in_the_stack(stack: Compose) -> None:
    output = stack("run", "--rm", "-T", "producer", "--queue", "celery", "--json", "lesson", "futures", "--quick")
    document = json.loads(output)
    assert document["ok"] is True


def test_a_redis_restart_keeps_queued_work_and_workers_reconnect(stack: Compose, executor: CeleryExecutor) -> None:
    """The stack's Redis keeps an append-only file on its volume: a message queued before `restart redis` is
    still queued after it, and the worker container reconnects and serves again without being restarted."""
    parked = f"parked-{uuid.uuid4().hex[:8]}"  # a queue no worker consumes
    executor.celery_app.send_task("worker.tasks.demo.noop", queue=parked)
    stack("restart", "redis")
    password = parse_env(ENV_FILE.read_text())["REDIS_PASSWORD"]
    published = stack("port", "redis", "6379").strip().rsplit(":", 1)[1]
    with CeleryExecutor(client_app(f"redis://:{password}@127.0.0.1:{published}/0")) as after:
        assert after.redis.llen(parked) == 1
        assert after.submit(tasks.cpu_bound, 10).result(TIMEOUT) == functions.spin(10)
