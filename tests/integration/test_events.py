"""Task events on real workers of every pool: each one reaches a Celery event receiver (what Flower is), in
batches (``celery_futures/worker/events.py``): each PUBLISH carries a full buffer or one interval's events.

The workers flush every half second here, so the bound (a full buffer per publish, plus one publish per
interval) is far below what Celery alone sends: 1.4 (threads) to 3 (gevent) publishes per task."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from celery import Celery

from celery_futures import CeleryExecutor
from producer.processes import RedisServer, WorkerFactory, WorkerProcess, wait_until
from worker import constants as c
from worker.app import client_app
from worker.tasks import demo as tasks

TASKS = 60
TIMEOUT = 60
FLUSH_SECONDS = 0.5
BUFFER_LIMIT = 24
"""Celery's ``EventDispatcher`` flushes a group at once when it holds this many events."""
CONCURRENCY = {"prefork": 2, "threads": 4, "gevent": 20, "solo": None}
EVENTS_PER_TASK = ("task-received", "task-started", "task-succeeded")


@dataclass
class Monitor:
    """Celery's own event receiver, as Flower runs it, plus a count of the PUBLISHes that carried the events."""

    app: Celery
    redis_client: redis.Redis
    hostname: str
    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Task id -> the event types received for it."""
    publishes: int = 0
    """Messages on the task-event channels that carried at least one event of ``hostname``."""

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("hostname") == self.hostname and "uuid" in event:
            self.seen[event["uuid"]].add(event["type"])

    def count_publish(self, message: dict[str, Any]) -> None:
        envelope = json.loads(message["data"])
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        events = json.loads(body)
        events = events if isinstance(events, list) else [events]
        if any(event.get("hostname") == self.hostname for event in events):
            self.publishes += 1

    def complete(self, task_ids: list[str]) -> bool:
        return all(self.seen[task_id] >= set(EVENTS_PER_TASK) for task_id in task_ids)


@pytest.fixture(params=list(CONCURRENCY))
def batching_worker(request: pytest.FixtureRequest, worker_factory: WorkerFactory) -> Iterator[WorkerProcess]:
    pool = str(request.param)
    worker = worker_factory.start(pool, CONCURRENCY[pool], env={c.ENV_EVENT_FLUSH: str(FLUSH_SECONDS)})
    yield worker
    worker.stop()


@pytest.fixture
def monitor(redis_server: RedisServer, redis_client: redis.Redis,
            batching_worker: WorkerProcess) -> Iterator[Monitor]:
    app = client_app(redis_server.url())
    found = Monitor(app, redis_client, batching_worker.name)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.psubscribe(**{"*celeryev/task.*": found.count_publish})
    counter = pubsub.run_in_thread(sleep_time=0.05, daemon=True)
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": found.on_event})
        capture = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True)
        capture.start()
        yield found
        receiver.should_stop = True
        capture.join(TIMEOUT)
    counter.stop()
    counter.join(TIMEOUT)


def run_noops(executor: CeleryExecutor, n: int) -> list[str]:
    futures = [executor.submit(tasks.noop) for _ in range(n)]
    done, _ = wait(futures, timeout=TIMEOUT)
    assert len(done) == n
    return [future.task_id for future in futures]


def test_every_task_event_reaches_a_monitor_in_batches(redis_server: RedisServer, batching_worker: WorkerProcess,
                                                       monitor: Monitor) -> None:
    with CeleryExecutor(client_app(redis_server.url()), queue=batching_worker.queue) as executor:
        warm_up = run_noops(executor, 1)  # the receiver is listening once it has this task's events
        wait_until(lambda: monitor.complete(warm_up), TIMEOUT, "the warm-up task's events")
        monitor.publishes = 0
        started = time.monotonic()
        task_ids = run_noops(executor, TASKS)
        wait_until(lambda: monitor.complete(task_ids), TIMEOUT, "every task's received, started and succeeded events")
        seconds = time.monotonic() - started
    events = sum(len(monitor.seen[task_id]) for task_id in task_ids)
    assert events == TASKS * len(EVENTS_PER_TASK)
    # Each publish is a full buffer or the one flush of an interval that began with an event waiting; on the
    # threads pool, a pool thread's full-buffer flush can split one in two.
    bound = 2 * (events / BUFFER_LIMIT + seconds / FLUSH_SECONDS + 1)
    assert monitor.publishes <= bound, (monitor.publishes, seconds)
    assert monitor.publishes < TASKS / 2  # Celery alone: 1.4 (threads) to 3 (gevent) per task
