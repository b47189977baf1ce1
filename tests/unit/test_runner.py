"""The generic runner's resolution refuses every way around the allowlist we know of."""

from __future__ import annotations

import math

import pytest

from celery_futures.protocol.allowlist import NotAllowedError
from celery_futures.worker.runner import checked_arguments, resolve_allowed
from worker import functions
from worker.settings import allowlist_from

DEFAULT = allowlist_from({})  # our demo's default: the library's and worker.functions.*


@pytest.mark.parametrize(
    ("target", "expected"),
    [("builtins:pow", pow), ("math:sqrt", math.sqrt), ("worker.functions:spin", functions.spin),
     ("time:sleep", __import__("time").sleep)],
)
def test_admitted_functions_resolve(target: str, expected: object) -> None:
    assert resolve_allowed(target, DEFAULT) is expected


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("worker.functions:json.codecs.builtins.exec", "names builtins.exec, not a function defined there"),
        ("worker.functions:json.loads", "names json.loads"),
        ("worker.functions:__loader__.get_data", "is not the public name of a function"),
        ("worker.functions:_private", "is not the public name"),
        ("os:system", "os.system is not in the worker allowlist"),
        ("builtins:eval", "builtins.eval is not in the worker allowlist"),
        ("builtins:__import__", "is not the public name"),
        ("math", "is not the public name"),
        ("math:sqrt()", "is not the public name"),
        ("math:pi", "names an object that is not a function"),
    ],
)
def test_ways_around_the_allowlist_are_refused(target: str, reason: str) -> None:
    with pytest.raises(NotAllowedError, match=reason.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        resolve_allowed(target, DEFAULT)


def test_nothing_is_imported_before_the_allowlist_admits_it() -> None:
    with pytest.raises(NotAllowedError, match="not in the worker allowlist"):
        resolve_allowed("antigravity:fly", DEFAULT)
    import sys

    assert "antigravity" not in sys.modules


@pytest.mark.parametrize("target", [None, 5, ["math:sqrt"], {"__type__": "tuple"}])
def test_a_target_that_is_not_a_string_is_refused(target: object) -> None:
    with pytest.raises(NotAllowedError, match="the target must be a string module:qualname"):
        resolve_allowed(target, DEFAULT)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "kwargs"), [("abc", {}), ({"a": 1}, {}), ([], []), ([], None)])
def test_runner_arguments_must_be_a_list_and_a_dict(args: object, kwargs: object) -> None:
    with pytest.raises(TypeError, match="the runner takes a list of arguments and a dict of keyword arguments"):
        checked_arguments(args, kwargs)
    assert checked_arguments([1], {"k": 2}) == ([1], {"k": 2})
