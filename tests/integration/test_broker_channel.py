"""A lost broker connection closed the way Celery's consumer closes it, on a real Redis that restarts between
the two closes: the worker's transport must come through it with its unacknowledged message back in the queue.

Celery 5.7 ``collect()``s the connection, then ``close()``s it. The task channel's close reads its BRPOP in
flight first, which fails while Redis is down; the transport's own pass over its channels stops at the fanout
channel (the worker's pidbox), whose ``queue_delete`` fails too; so ``collect()`` detaches the transport with
the task channel still open; kombu's second close then raised ``AttributeError``, which
Celery calls unrecoverable: the worker exited (``celery_futures/worker/channel_close.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Message, Queue

from celery_futures.worker.message_guard import GuardedTransport
from producer.processes import RedisServer, wait_until

COLLECT_SOCKET_TIMEOUT = 1.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer.start(tmp_path, persistent=True)
    yield started
    started.stop()


def delivered_and_unacked(connection: Connection, queue: Queue) -> list[Message]:
    """Publish one message and let a consumer on the default channel receive it without acknowledging it."""
    with connection.Producer() as producer:
        producer.publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue],
                         serializer="json")
    received: list[Message] = []
    consumer = connection.Consumer([queue], callbacks=[lambda _body, message: received.append(message)],
                                   accept=["json"])
    consumer.consume()

    def drained() -> bool:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=0.2)
        return bool(received)

    wait_until(drained, 10, "the message delivered")
    return received


def open_fanout_channel(connection: Connection) -> Any:
    """A second channel with an auto-delete fanout queue, as the worker's pidbox has."""
    channel = connection.channel()
    broadcast = Queue("broadcast-test", Exchange("broadcast-test", type="fanout"), auto_delete=True)
    connection.Consumer([broadcast], channel=channel, callbacks=[lambda _body, _message: None],
                        accept=["json"]).consume()
    return channel


def test_a_connection_collected_while_redis_is_down_closes_after_it_is_back(server: RedisServer) -> None:
    queue = Queue("tasks-test", Exchange("tasks-test"), "tasks-test")
    connection = Connection(server.url(), transport=GuardedTransport)
    connection.connect()
    task_channel: Any = connection.default_channel
    received = delivered_and_unacked(connection, queue)
    open_fanout_channel(connection)
    assert len(received) == 1
    task_channel._brpop_start()  # a BRPOP in flight, as a worker's event loop always has one

    server.process.kill()  # type: ignore[union-attr]
    server.process.wait()  # type: ignore[union-attr]
    connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT)
    assert not task_channel.closed, "the scenario needs collect() to leave the task channel open"
    server.launch()

    connection.close()

    with server.client() as client:
        assert client.llen(queue.name) == 1, "the unacknowledged message went back to its queue"
        assert client.hlen("unacked") == 0
