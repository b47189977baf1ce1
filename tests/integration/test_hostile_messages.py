"""Hostile messages pushed straight into a worker's queue: each is rejected with a log line, leaves no side
effect, and the worker keeps serving, on every pool, with no other task lost.

Each hostile message starts as a real one: the test sends ``ledger_once`` to a queue nobody consumes and pops
what kombu's Redis transport stored there (``LPUSH`` of a JSON envelope: base64 body,
``properties.body_encoding``, ``content-type``, ``headers``, ``properties.delivery_info``, ``delivery_tag``),
then breaks one thing and ``LPUSH``es it onto the worker's queue between good tasks. Had the hostile one run,
its ledger entry would exist. What Celery does by itself and what ``worker/message_guard.py`` adds is said
there.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from celery_futures.client.settings import DEFAULT_MAX_PAYLOAD_BYTES
from producer.processes import WorkerProcess, wait_until
from worker import constants as c
from worker.tasks.ledger import ledger_key

TIMEOUT = 30
LEDGER_TASK = "worker.tasks.ledger.ledger_once"
HOSTILE_TOKEN = "hostile"
GOOD_EACH_SIDE = 3
HUGE_BYTES = 32 * 1024 * 1024

Envelope = dict[str, Any]


class MakesDirectory:
    """Pickles to a call of ``os.mkdir(path)``: whoever unpickles it creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return os.mkdir, (str(self.path),)


def stored_message(celery_client: Celery, redis_client: redis.Redis, run: str) -> Envelope:
    """A real ``ledger_once(run, "hostile")`` message, exactly as kombu stored it in Redis."""
    scratch = f"scratch-{uuid.uuid4().hex}"
    celery_client.send_task(LEDGER_TASK, args=(run, HOSTILE_TOKEN), queue=scratch)
    raw = redis_client.rpop(scratch)
    assert isinstance(raw, bytes), "the scratch queue should hold the message just sent"
    envelope: Envelope = json.loads(raw)
    return envelope


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def call_body(args: list[Any], embed: dict[str, Any] | None = None) -> str:
    """A protocol 2 body, ``[args, kwargs, embed]``, base64-encoded as kombu stores it."""
    embed = embed or {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return encode(json.dumps([args, {}, embed]).encode())


def run_of(m: Envelope) -> str:
    """The ``run`` argument of the stored ``ledger_once`` message."""
    run: str = json.loads(base64.b64decode(m["body"]))[0][0]
    return run


def body_not_json(m: Envelope, _: Path) -> Envelope:
    m["body"] = encode(b"\x00not json{{{")
    return m


def envelope_not_json(_: Envelope, __: Path) -> str:
    return "this is not json at all {"


def pickled(m: Envelope, marker: Path) -> Envelope:
    args: tuple[Any, ...] = ((run_of(m), HOSTILE_TOKEN, MakesDirectory(marker)), {}, {})
    m.update({"content-type": "application/x-python-serialize", "content-encoding": "binary",
              "body": encode(pickle.dumps(args))})
    return m


def unknown_task(m: Envelope, _: Path) -> Envelope:
    m["headers"]["task"] = "no.such.task"
    return m


def missing_task_id(m: Envelope, _: Path) -> Envelope:
    del m["headers"]["id"]
    return m


def missing_headers(m: Envelope, _: Path) -> Envelope:
    del m["headers"]
    return m


def huge_body(m: Envelope, _: Path) -> Envelope:
    m["body"] = call_body([run_of(m), HOSTILE_TOKEN + "h" * HUGE_BYTES])
    return m


def envelope_is_array(m: Envelope, _: Path) -> list[Envelope]:
    return [m]


def body_not_base64(m: Envelope, _: Path) -> Envelope:
    m["body"] = "!!!not base64***"
    return m


def empty_body(m: Envelope, _: Path) -> Envelope:
    m["body"] = ""
    return m


def no_delivery_info(m: Envelope, _: Path) -> Envelope:
    del m["properties"]["delivery_info"]
    return m


def timelimit_not_a_pair(m: Envelope, _: Path) -> Envelope:
    m["headers"]["timelimit"] = 5
    return m


def empty_eta(m: Envelope, _: Path) -> Envelope:
    m["headers"]["eta"] = ""
    return m


def protocol_1(m: Envelope, _: Path) -> Envelope:
    task = {"task": LEDGER_TASK, "id": [m["headers"]["id"]], "args": [run_of(m), HOSTILE_TOKEN], "kwargs": {}}
    m.update({"headers": {}, "body": encode(json.dumps(task).encode())})
    return m


def malformed_errback(m: Envelope, _: Path) -> Envelope:
    """A task that fails, so its errback would be called: on solo, inside the worker's own loop."""
    m["body"] = call_body([run_of(m), HOSTILE_TOKEN, "fail"], {"errbacks": [{"task": "worker.tasks.demo.record"}]})
    return m


@dataclass(frozen=True)
class Case:
    build: Callable[[Envelope, Path], Any]
    log: str
    """A regular expression the worker's log must match once it has dealt with the message."""


CASES = {
    # What the brief names; Celery handles pickle, unknown tasks and missing headers by itself.
    "body-not-json": Case(body_not_json, r"body is not valid JSON|Can't decode message body"),
    "envelope-not-json": Case(envelope_not_json, r"rejected a message that is not JSON"),
    "pickle": Case(pickled, r"Refusing to deserialize untrusted content of type pickle"),
    "unknown-task": Case(unknown_task, r"Received unregistered task of type 'no\.such\.task'"),
    "missing-task-id": Case(missing_task_id, r"task header id must be a non-empty string, found missing"),
    "missing-headers": Case(missing_headers, r"Received and deleted unknown message"),
    "huge-body": Case(huge_body, rf"more than the limit of {c.DEFAULT_MAX_MESSAGE_BYTES} \(max_message_bytes\)"),
    # Found by mutating real messages: each of these stopped or restarted Celery's consumer.
    "envelope-is-array": Case(envelope_is_array, r"the envelope must be a JSON object, found a list"),
    "body-not-base64": Case(body_not_base64, r"body is not valid base64"),
    "empty-body": Case(empty_body, r"body must be \[args, kwargs, embed\]"),
    "no-delivery-info": Case(no_delivery_info, r"properties\.delivery_info must be an object"),
    "timelimit-not-a-pair": Case(timelimit_not_a_pair, r"task header timelimit must be a pair"),
    "empty-eta": Case(empty_eta, r"task header eta must be an ISO 8601 string"),
    "protocol-1": Case(protocol_1, r"task protocol 1 is refused"),
    "malformed-errback": Case(malformed_errback, r"body embed errbacks must be a list of signatures"),
}


def send_good(celery_client: Celery, worker: WorkerProcess, run: str, tokens: list[str]) -> list[Any]:
    return [celery_client.send_task(LEDGER_TASK, args=(run, token), queue=worker.queue) for token in tokens]


def ledger_runs(redis_client: redis.Redis, run: str) -> dict[str, int]:
    """How many times each token of ``run`` ran."""
    entries = redis_client.hgetall(ledger_key(run))
    return {(key.decode() if isinstance(key, bytes) else key): int(value) for key, value in entries.items()}


def log_since(worker: WorkerProcess, offset: int) -> str:
    return worker.log()[offset:]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_message_is_rejected_and_the_worker_keeps_serving(
    case: Case, pool_worker: WorkerProcess, celery_client: Celery, redis_client: redis.Redis, tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex
    marker = tmp_path / "unpickled"
    hostile = case.build(stored_message(celery_client, redis_client, run), marker)
    offset = len(pool_worker.log())
    before = [f"before-{i}" for i in range(GOOD_EACH_SIDE)]
    after = [f"after-{i}" for i in range(GOOD_EACH_SIDE)]

    sent = send_good(celery_client, pool_worker, run, before)
    redis_client.lpush(pool_worker.queue, hostile if isinstance(hostile, str) else json.dumps(hostile))
    sent += send_good(celery_client, pool_worker, run, after)

    assert [result.get(timeout=TIMEOUT) for result in sent] == before + after
    wait_until(lambda: re.search(case.log, log_since(pool_worker, offset)) is not None, TIMEOUT,
               f"a log line matching {case.log!r}")
    assert ledger_runs(redis_client, run) == dict.fromkeys(before + after, 1), (
        "the hostile message ran, or a good one did not run exactly once")
    assert not marker.exists(), "the pickle was unpickled"
    assert celery_client.control.ping(destination=[pool_worker.name], timeout=5)
    assert "Unrecoverable error" not in log_since(pool_worker, offset)


@pytest.mark.parametrize("payload", ["not json at all", json.dumps([1, 2])], ids=["not-json", "array"])
def test_hostile_broadcast_is_rejected_and_the_worker_still_answers(
    payload: str, pool_worker: WorkerProcess, celery_client: Celery, redis_client: redis.Redis,
) -> None:
    """Control commands (ping, revoke) reach workers by pub/sub on the pidbox channel, which anyone with the
    password can publish to as well."""
    offset = len(pool_worker.log())
    assert redis_client.publish("/0.celery.pidbox", payload) >= 1, "no worker listens on the pidbox channel"
    wait_until(lambda: re.search(r"Cannot process event on channel|rejected a message",
                                 log_since(pool_worker, offset)) is not None, TIMEOUT, "the rejection's log line")
    assert celery_client.control.ping(destination=[pool_worker.name], timeout=5)
    assert celery_client.send_task("worker.tasks.demo.noop", queue=pool_worker.queue).get(timeout=TIMEOUT) is None


def test_the_largest_arguments_a_producer_may_send_still_run(
    pool_worker: WorkerProcess, celery_client: Celery, redis_client: redis.Redis,
) -> None:
    """The size limit sits above what the producer allows (1 MiB of JSON arguments), so no real task hits it."""
    run = uuid.uuid4().hex
    token = "t" * (DEFAULT_MAX_PAYLOAD_BYTES - len(run) - 16)
    assert len(json.dumps([run, token])) <= DEFAULT_MAX_PAYLOAD_BYTES
    result = celery_client.send_task(LEDGER_TASK, args=(run, token), queue=pool_worker.queue)
    assert result.get(timeout=TIMEOUT) == token
    assert ledger_runs(redis_client, run) == {token: 1}
