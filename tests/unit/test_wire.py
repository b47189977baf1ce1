"""Arguments either arrive exactly as given, types and all, or ``submit`` refuses them with a TypeError.

The properties build real task messages with :class:`CallBuilder` and decode them with kombu's JSON, as a
worker does; nothing is sent. ``identical`` compares types all the way down, so ``1 == 1.0 == True`` or
``(1,) vs [1]`` cannot pass for a round trip.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from kombu.utils.json import dumps, loads

from celery_futures.client.calls import CallBuilder, TaskCall
from celery_futures.client.errors import PayloadTooLargeError
from celery_futures.protocol.codec import MAX_DEPTH, to_wire
from celery_futures.protocol.installation import allowlist_of
from celery_futures.protocol.keys import RUNNER_TASK
from tests.wire_values import Color, Name, Point, admitted, anything, arguments, identical, plain_keys
from worker import functions
from worker.app import app as demo_app

BUILDER = CallBuilder(demo_app, allowlist_of(demo_app))


def decoded(call: TaskCall) -> tuple[list[Any], dict[str, Any]]:
    """What a worker's task gets: the message body through kombu's JSON, unwrapped from the runner's args."""
    args, kwargs, _embed = loads(dumps([call.args, call.kwargs, {}]))
    if call.name == RUNNER_TASK:
        assert kwargs == {}
        _target, args, kwargs = args
    return args, kwargs


targets = st.sampled_from([functions.echo, "worker.tasks.demo.noop"])


@settings(max_examples=300)
@given(fn=targets, given_call=arguments(anything))
def test_arguments_are_refused_or_arrive_identical(fn: Any, given_call: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
    args, kwargs = given_call
    try:
        call = BUILDER.build(fn, args, kwargs)
    except TypeError:
        event("refused")
        return
    event("sent")
    got_args, got_kwargs = decoded(call)
    assert identical(list(args), got_args) and identical(kwargs, got_kwargs)


@settings(max_examples=300)
@given(fn=targets, given_call=arguments(admitted, plain_keys))
def test_admitted_arguments_are_never_refused(fn: Any, given_call: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
    args, kwargs = given_call
    got_args, got_kwargs = decoded(BUILDER.build(fn, args, kwargs))
    assert identical(list(args), got_args) and identical(kwargs, got_kwargs)


# -- what a refusal says ---------------------------------------------------------------------------------
def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def cyclic() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1, {2}), {}, r"argument 1 of worker\.functions:echo \(set\) is not JSON-serializable: only None, bool"),
        ((), {"x": [0, 1, {"k": math.nan}]},
         r"keyword argument 'x'\[2\]\['k'\] of worker\.functions:echo \(float\) is nan, which is not JSON"),
        (([(1, math.inf)],), {}, r"argument 0\[0\]\[1\] of .* \(float\) is inf"),
        (({1: "a"},), {}, r"argument 0 of .* \(dict\) has the key 1 of type int; JSON keys are strings"),
        (({"a": {None: 1}},), {}, r"argument 0\['a'\] of .* \(dict\) has the key None of type NoneType"),
        (({"__type__": "tuple", "__value__": [1]},), {}, r"\(dict\) has the key '__type__', which kombu reserves"),
        ((), {"__type__": 1}, r"keyword argument '__type__' of .*: the name is reserved"),
        ((Color.RED,), {}, r"argument 0 of .* \(Color, a subclass of int\) would arrive as a plain int"),
        (([Name("x")],), {}, r"argument 0\[0\] of .* \(Name, a subclass of str\) would arrive as a plain str"),
        ((Point(1, 2),), {}, r"\(Point, a subclass of tuple\) would arrive as a plain tuple"),
        (("a\ud800",), {}, r"argument 0 of .* \(str\) has the surrogate '\\ud800' at index 1, which is not"),
        (({"\udc00": 1},), {}, r"argument 0 of .* \(str\) has the surrogate '\\udc00' at index 0"),
        ((b"raw",), {}, r"argument 0 of .* \(bytes\) is not JSON-serializable"),
        ((10**5000,), {}, r"argument 0 of .* \(int\) has more than 4300 digits"),
        ((deep(MAX_DEPTH + 1),), {}, rf"\(list\) is nested more than {MAX_DEPTH} containers deep"),
        ((cyclic(),), {}, r"argument 0(\[1\])+ of .* \(list\) is nested more than .* \(or contains itself\)"),
    ],
)
def test_refusal_names_the_argument_the_place_and_the_type(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                           message: str) -> None:
    with pytest.raises(TypeError, match=message):
        BUILDER.build(functions.echo, args, kwargs)


def test_limits_themselves_are_admitted() -> None:
    value = (deep(MAX_DEPTH), 10**4000, -0.0, "\U0001f600", {"__value__": 1})
    assert identical(list(value), decoded(BUILDER.build(functions.echo, value, {}))[0])


def test_tasks_follow_the_same_rule() -> None:
    with pytest.raises(TypeError, match=r"argument 0 of worker\.tasks\.demo\.io_sleep \(float\) is nan"):
        BUILDER.build("worker.tasks.demo.io_sleep", (math.nan,), {})


def test_results_follow_the_same_rule() -> None:
    with pytest.raises(TypeError, match=r"the result\[1\] of f \(set\) is not JSON-serializable"):
        to_wire([1, {2}], "the result", "f")
    assert to_wire(((1,), {}), "the result", "f") == {"__type__": "tuple", "__value__": [
        {"__type__": "tuple", "__value__": [1]}, {}]}


# -- the payload limit -------------------------------------------------------------------------------------
def test_payload_limit_is_on_the_json_of_args_and_kwargs() -> None:
    args, kwargs = ("x" * 50, (1, 2)), {"k": "é"}
    size = len(dumps([["x" * 50, {"__type__": "tuple", "__value__": [1, 2]}], {"k": "é"}]))
    exact = CallBuilder(demo_app, allowlist_of(demo_app), max_payload_bytes=size)
    assert decoded(exact.build(functions.echo, args, kwargs)) == (list(args), kwargs)
    smaller = CallBuilder(demo_app, allowlist_of(demo_app), max_payload_bytes=size - 1)
    expected = (rf"the arguments of worker\.functions:echo are {size} bytes as JSON, over the limit of "
                rf"{size - 1} bytes \(PRODUCER_MAX_PAYLOAD_BYTES\)")
    with pytest.raises(PayloadTooLargeError, match=expected):
        smaller.build(functions.echo, args, kwargs)
    with pytest.raises(ValueError, match="PRODUCER_MAX_PAYLOAD_BYTES"):
        smaller.build("worker.tasks.demo.io_sleep", (), {"seconds": "9" * size})
