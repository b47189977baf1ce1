"""The message guard's checks, without Redis: what it lets through, what it refuses and why, and that no
input makes it raise (the real worker is in tests/integration/test_hostile_messages.py)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celery_futures.client.settings import DEFAULT_MAX_PAYLOAD_BYTES
from celery_futures.protocol.settings import MIN_MESSAGE_BYTES, SettingsError
from celery_futures.worker.message_guard import envelope_problem
from worker import constants as c
from worker.settings import WorkerSettings

LIMIT = c.DEFAULT_MAX_MESSAGE_BYTES
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def encode(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def real_envelope(args: list[Any] | None = None, embed: dict[str, Any] | None = None) -> dict[str, Any]:
    """What Celery 5.7 stores in Redis for ``record("x")`` (captured from a real send, ids shortened)."""
    return {
        "body": encode([args if args is not None else ["x"], {}, embed or EMBED]),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": "worker.tasks.demo.record", "id": "cfx-1-2", "shadow": None, "eta": None,
            "expires": "2026-11-26T10:00:00+00:00", "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": "cfx-1-2", "parent_id": None, "argsrepr": "('x',)",
            "kwargsrepr": "{}", "origin": "gen1@host", "ignore_result": False, "replaced_task_nesting": 0,
            "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": "cfx-1-2", "reply_to": "a-b", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": "d-1",
        },
    }


def test_a_real_task_message_passes() -> None:
    assert envelope_problem(real_envelope(), LIMIT) is None


def test_a_real_canvas_message_passes() -> None:
    callback = {"task": "worker.tasks.demo.record", "args": ["y"], "kwargs": {}, "options": {"queue": "celery"},
                "subtask_type": None, "immutable": False}
    assert envelope_problem(real_envelope(embed={**EMBED, "callbacks": [callback], "chain": [callback]}),
                            LIMIT) is None


def test_a_control_message_passes() -> None:
    """Pidbox commands and replies travel the same transport: they have no task header and are not refused."""
    message = real_envelope()
    message.update(headers={"clock": 3, "expires": 1700000000.0}, body=encode({"method": "ping", "arguments": {}}))
    assert envelope_problem(message, LIMIT) is None


def mutate(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    message = real_envelope()
    change(message)
    return message


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ([1, 2], "the envelope must be a JSON object, found a list"),
        (mutate(lambda m: m.pop("properties")), "properties must be an object, found missing"),
        (mutate(lambda m: m.update({"headers": [1]})), "headers must be an object, found a list"),
        (mutate(lambda m: m.pop("content-type")), "content-type must be a non-empty string, found missing"),
        (mutate(lambda m: m["properties"].pop("delivery_tag")), "properties.delivery_tag must be a non-empty"),
        (mutate(lambda m: m["properties"].update(delivery_info={"exchange": ""})), "properties.delivery_info"),
        (mutate(lambda m: m["properties"].update(body_encoding="rot13")), "body_encoding must be base64 or"),
        (mutate(lambda m: m["headers"].pop("id")), "task header id must be a non-empty string, found missing"),
        (mutate(lambda m: m["headers"].update(id=["x"])), "task header id must be a non-empty string, found a list"),
        (mutate(lambda m: m["headers"].update(shadow={"a": 1})), "task header shadow must be"),
        (mutate(lambda m: m["headers"].update(eta="")), "task header eta must be an ISO 8601 string"),
        (mutate(lambda m: m["headers"].update(timelimit="ab")), "task header timelimit must be a pair"),
        (mutate(lambda m: m["headers"].update(stamped_headers=5)), "task header stamped_headers must be a list"),
        (mutate(lambda m: m.update(body="abcde")), "body is not valid base64"),
        (mutate(lambda m: m.update(body="!!!")), "body must be [args, kwargs, embed]"),  # base64 of nothing
        (mutate(lambda m: m.pop("body")), "body must be [args, kwargs, embed]"),
        (mutate(lambda m: m.update(body=base64.b64encode(b"\x00{").decode())), "body is not valid JSON"),
        (mutate(lambda m: m.update(body=encode({"a": 1}))), "body must be [args, kwargs, embed]"),
        (mutate(lambda m: m.update(body=encode([[], {}, {"errbacks": [{"task": "t"}]}]))),
         "body embed errbacks must be a list of signatures"),
        (mutate(lambda m: m.update(headers={}, body=encode({"task": "worker.tasks.demo.record", "id": "1"}))),
         "task protocol 1 is refused"),
    ],
)
def test_a_malformed_message_is_refused_with_its_reason(message: Any, reason: str) -> None:
    problem = envelope_problem(message, LIMIT)
    assert problem is not None and reason in problem


def test_pickle_is_left_to_celery_to_refuse() -> None:
    """Celery's ``accept_content`` refuses it with its own log line; the guard does not unpickle to look."""
    message = mutate(lambda m: m.update({"content-type": "application/x-python-serialize", "body": "gARLAS4="}))
    assert envelope_problem(message, LIMIT) is None


def test_size_limit() -> None:
    message = real_envelope(args=["x" * 100_000])
    assert envelope_problem(message, 200_000) is None
    problem = envelope_problem(message, 100_000)
    assert problem is not None and "more than the limit of 100000 (max_message_bytes)" in problem


def test_the_default_limit_admits_the_producers_largest_arguments() -> None:
    message = real_envelope(args=["é" * DEFAULT_MAX_PAYLOAD_BYTES])  # escaped by JSON: 6 bytes each, base64 8
    assert envelope_problem(real_envelope(args=["x" * DEFAULT_MAX_PAYLOAD_BYTES]), LIMIT) is None
    assert envelope_problem(message, LIMIT) is not None, "a 6 MiB message must not pass a 4 MiB limit"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_no_json_value_makes_the_guard_raise(value: Any) -> None:
    assert envelope_problem(value, LIMIT) is None or isinstance(envelope_problem(value, LIMIT), str)


PATHS = [("headers", key) for key in real_envelope()["headers"]] + [
    ("properties", key) for key in real_envelope()["properties"]] + [
    (key,) for key in ("body", "content-type", "content-encoding", "headers", "properties")]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PATHS), JSON_VALUES)
def test_no_single_field_value_makes_the_guard_raise(path: tuple[str, ...], value: Any) -> None:
    message = copy.deepcopy(real_envelope())
    target = message
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problem = envelope_problem(message, LIMIT)
    assert problem is None or isinstance(problem, str)


@pytest.mark.parametrize("bad", ["abc", "-1", "1000", "1.5"])
def test_a_bad_limit_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError, match=c.ENV_MAX_MESSAGE_BYTES):
        WorkerSettings.from_env({c.ENV_MAX_MESSAGE_BYTES: bad})


def test_the_limit_is_read_from_the_environment() -> None:
    assert WorkerSettings.from_env({}).max_message_bytes == LIMIT
    raised = str(8 * MIN_MESSAGE_BYTES)
    assert WorkerSettings.from_env({c.ENV_MAX_MESSAGE_BYTES: raised}).max_message_bytes == int(raised)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON_VALUES, st.tuples(JSON_VALUES, JSON_VALUES, JSON_VALUES).map(list),
                 st.dictionaries(st.sampled_from(list(EMBED)), JSON_VALUES).map(lambda e: [[], {}, e])))
def test_no_body_makes_the_guard_raise(payload: Any) -> None:
    task_headers: dict[str, Any] = real_envelope()["headers"]
    for headers in (task_headers, {}):
        message = real_envelope()
        message.update(headers=headers, body=encode(payload))
        problem = envelope_problem(message, LIMIT)
        assert problem is None or isinstance(problem, str)
