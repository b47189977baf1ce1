"""The claim scripts both sides run, against a real Redis: every state a claim can be in, and what a start
and a cancel decide from it, including after Redis lost its data (an empty claim, a reclaim, no marker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

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
