"""The claim scripts both sides run, against a real Redis: every state a claim can be in, and what a start
and a cancel decide from it, including after Redis lost its data (an empty claim, a reclaim, no marker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from kombu.transport.redis import Channel

from celery_futures.protocol.claims import (
    Owner,
    StartClaim,
    StartedState,
    claim_for_cancel,
    claim_for_start,
    hold_on_receipt,
    reclaim,
)
from celery_futures.protocol.keys import claim_key, client_key
from celery_futures.worker import receipt
from producer.processes import RedisServer
from worker.app import create_app
from worker.tasks import demo as demo_tasks

OWNER = Owner("threads", "threads@here", "boot-1")
OTHER = Owner("prefork", "prefork@there", "boot-2")
TTL = 60


@pytest.fixture
def task_id() -> str:
    return f"cfx-{uuid.uuid4().hex[:12]}-{uuid.uuid4().hex}"


@pytest.fixture
def marker(redis_client: redis.Redis) -> Iterator[str]:
    key = client_key(uuid.uuid4().hex[:12])
    redis_client.set(key, "1", ex=TTL)
    yield key
    redis_client.delete(key)


def start(client: redis.Redis, task_id: str, *, retry: bool = False) -> StartClaim:
    started = StartedState(f"celery-task-meta-{task_id}", '{"status": "STARTED"}', TTL)
    return claim_for_start(client, task_id, OWNER, TTL, started, retry=retry)


def test_a_held_task_starts_and_announces_started(redis_client: redis.Redis, task_id: str) -> None:
    hold_on_receipt(redis_client, task_id, OWNER, TTL)
    assert start(redis_client, task_id) is StartClaim.WON
    assert redis_client.get(claim_key(task_id)) == OWNER.claim_value().encode()
    assert redis_client.get(f"celery-task-meta-{task_id}") == b'{"status": "STARTED"}'


@pytest.mark.parametrize(("claim", "outcome"), [
    (None, StartClaim.MISSING),  # the held mark went with Redis's data: it may have been cancelled
    ("cancelled", StartClaim.CANCELLED),
    (OTHER.claim_value(), StartClaim.ALREADY_STARTED),
    (OWNER.claim_value(), StartClaim.ALREADY_STARTED),  # a redelivered copy of what this worker ran
    (OWNER.reclaimed_value(), StartClaim.MISSING),  # reclaimed before it reached its claim: not decidable
    (OTHER.reclaimed_value(), StartClaim.ALREADY_STARTED),
])
def test_what_a_start_decides_from_each_claim(redis_client: redis.Redis, task_id: str, claim: str | None,
                                              outcome: StartClaim) -> None:
    if claim is not None:
        redis_client.set(claim_key(task_id), claim, ex=TTL)
    assert start(redis_client, task_id) is outcome
    assert not redis_client.exists(f"celery-task-meta-{task_id}")  # STARTED only for a winner


def test_a_retried_start_finds_its_own_win(redis_client: redis.Redis, task_id: str) -> None:
    redis_client.set(claim_key(task_id), OWNER.claim_value(), ex=TTL)
    assert start(redis_client, task_id, retry=True) is StartClaim.WON


@pytest.mark.parametrize(("claim", "won", "owner"), [
    (None, True, None),
    (OWNER.held_value(), True, None),
    ("cancelled", True, None),
    (OWNER.claim_value(), False, OWNER),
    (OWNER.reclaimed_value(), False, OWNER),  # a worker said again, after a data loss, that it runs it
])
def test_what_a_cancel_decides_from_each_claim(redis_client: redis.Redis, task_id: str, marker: str,
                                               claim: str | None, won: bool, owner: Owner | None) -> None:
    if claim is not None:
        redis_client.set(claim_key(task_id), claim, ex=TTL)
    outcome = claim_for_cancel(redis_client, [task_id], TTL, marker)[0]
    assert (outcome.won, outcome.owner, outcome.reset) == (won, owner, False)
    expected = b"cancelled" if won else claim.encode() if claim else None
    assert redis_client.get(claim_key(task_id)) == expected


def test_without_the_clients_marker_a_cancel_decides_nothing(redis_client: redis.Redis, task_id: str) -> None:
    outcome = claim_for_cancel(redis_client, [task_id], TTL, client_key("gone-with-the-data"))[0]
    assert (outcome.won, outcome.reset) == (False, True)
    assert not redis_client.exists(claim_key(task_id))


def test_a_reclaim_writes_only_where_no_claim_is_back(redis_client: redis.Redis) -> None:
    empty, taken = [f"cfx-{uuid.uuid4().hex[:12]}-{uuid.uuid4().hex}" for _ in range(2)]
    redis_client.set(claim_key(taken), "cancelled", ex=TTL)
    assert reclaim(redis_client, [empty, taken], OWNER, TTL) == 1
    assert redis_client.get(claim_key(empty)) == OWNER.reclaimed_value().encode()
    assert redis_client.get(claim_key(taken)) == b"cancelled"


# -- the held mark rides in kombu's receipt pipeline -------------------------------------------------------
def test_the_receipt_pipeline_marks_a_claimed_task_held_with_kombus_own_record(
    celery_client: Celery, redis_client: redis.Redis
) -> None:
    """A worker's guarded channel writes the held mark in the same pipeline as kombu's ``unacked`` record of
    the message (one round trip, before any ack), for the tasks it claims and no others."""
    owner = Owner("prefork", f"receipt@{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
    assert receipt.activate(celery_client, owner, lambda task: task.name == demo_tasks.noop.name)
    queue, claimed_id, unclaimed_id = f"q-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), str(uuid.uuid4())
    try:
        celery_client.send_task(demo_tasks.noop.name, task_id=claimed_id, queue=queue)
        celery_client.send_task(demo_tasks.record.name, args=("x",), task_id=unclaimed_id, queue=queue)
        with celery_client.connection_for_read() as connection, connection.SimpleQueue(queue) as simple:
            received = [simple.get(timeout=10) for _ in range(2)]
            tags = [str(message.delivery_tag) for message in received]
            assert all(redis_client.hexists(Channel.unacked_key, tag) for tag in tags)
            assert redis_client.get(claim_key(claimed_id)) == owner.held_value().encode()
            assert redis_client.get(claim_key(unclaimed_id)) is None
            assert all(receipt.held_on_receipt(message) for message in received)  # the signal will not write it
            for message in received:
                message.ack()
    finally:
        receipt.deactivate()


def test_the_receipt_pipeline_is_used_only_where_the_broker_is_the_backend(redis_server: RedisServer) -> None:
    """Broker and backend on different databases: the mark stays with the task_received signal."""
    split = create_app(redis_server.url())
    split.conf["result_backend"] = redis_server.url(db=1)
    try:
        assert not receipt.activate(split, Owner("prefork", "split@test", "boot"), lambda task: True)
        assert not receipt.held_on_receipt(object())
    finally:
        receipt.deactivate()
        split.close()
