"""Arguments and results over a real worker: what ``submit`` accepts comes back from ``echo`` exactly as sent
(types all the way down), what it refuses is never sent, and arguments over the payload limit are refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, event, given, settings

from celery_futures import CeleryExecutor, PayloadTooLargeError
from celery_futures.client.settings import DEFAULT_MAX_PAYLOAD_BYTES, ClientSettings
from producer.processes import RedisServer, WorkerFactory, WorkerProcess
from tests.wire_values import admitted, anything, arguments, identical, plain_keys
from worker import functions
from worker.app import client_app

TIMEOUT = 60
POOL = "threads"


@pytest.fixture(scope="module")
def echo_executor(redis_server: RedisServer, worker_factory: WorkerFactory,
                  shared_workers: dict[str, WorkerProcess]) -> Iterator[CeleryExecutor]:
    """One pool is enough: the wire is the same for all of them."""
    worker = shared_workers.get(POOL)
    if worker is None or worker.process.poll() is not None:
        worker = shared_workers[POOL] = worker_factory.start(POOL, 8)
    with CeleryExecutor(client_app(redis_server.url()), queue=worker.queue) as created:
        yield created


def idle_executor(redis_server: RedisServer, **env: str) -> CeleryExecutor:
    """An executor on a queue nobody consumes, so whatever it sends stays there to be counted."""
    settings = ClientSettings.from_env(env, queue=f"nobody-{uuid.uuid4().hex[:8]}")
    return CeleryExecutor(client_app(redis_server.url()), settings=settings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(given_call=arguments(admitted, plain_keys) | arguments(anything))
def test_echo_returns_what_was_sent_or_submit_refuses_it(echo_executor: CeleryExecutor,
                                                         given_call: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
    args, kwargs = given_call
    try:
        future = echo_executor.submit(functions.echo, *args, **kwargs)
    except TypeError:
        event("refused at submit")
        return
    event("sent")
    assert identical((args, kwargs), future.result(TIMEOUT))


def test_refused_results_say_where(echo_executor: CeleryExecutor) -> None:
    future = echo_executor.submit(functions.unique, [1, 1])
    with pytest.raises(TypeError, match=r"the result of worker\.functions:unique \(set\) is not JSON-serializable"):
        future.result(TIMEOUT)


def test_oversized_arguments_are_refused_before_sending(redis_server: RedisServer,
                                                        redis_client: redis.Redis) -> None:
    with idle_executor(redis_server, PRODUCER_MAX_PAYLOAD_BYTES="1000") as idle:
        with pytest.raises(PayloadTooLargeError, match=r"are 1\d{3} bytes as JSON, over the limit of 1000 bytes "
                                                       r"\(PRODUCER_MAX_PAYLOAD_BYTES\)"):
            idle.submit(functions.echo, "x" * 1000)
        with pytest.raises(PayloadTooLargeError):
            idle.map(functions.echo, ["small", "x" * 1000, "small"])
        idle.submit(functions.echo, "x" * 900)  # under the limit: sent
        assert redis_client.llen(str(idle.settings.queue)) == 1
        idle.shutdown(wait=False, cancel_futures=True)


def test_default_limit_is_one_mebibyte(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    assert DEFAULT_MAX_PAYLOAD_BYTES == 1024 * 1024
    with idle_executor(redis_server) as idle:
        with pytest.raises(PayloadTooLargeError, match=f"over the limit of {DEFAULT_MAX_PAYLOAD_BYTES} bytes"):
            idle.submit("worker.tasks.demo.io_sleep", "x" * DEFAULT_MAX_PAYLOAD_BYTES)
        assert redis_client.llen(str(idle.settings.queue)) == 0

