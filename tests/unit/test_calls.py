"""What submit() accepts, refuses, and how it names the reason, without sending anything."""

from __future__ import annotations

import threading

import pytest

from producer.calls import RUNNER_TASK, CallBuilder, function_target, our_task_names
from producer.errors import UnknownTaskError
from worker import functions, tasks
from worker.allowlist import Allowlist, NotAllowedError

BUILDER = CallBuilder(Allowlist.parse(None), our_task_names())


def test_our_tasks_are_known_and_celery_builtins_are_not() -> None:
    names = our_task_names()
    assert {"worker.tasks.noop", "worker.tasks.gate", RUNNER_TASK} <= names
    assert not any(name.startswith("celery.") for name in names)


def test_task_object_and_task_name_give_the_same_call() -> None:
    by_object = BUILDER.build(tasks.io_sleep, (0.5,), {})
    by_name = BUILDER.build("worker.tasks.io_sleep", (0.5,), {})
    assert by_object == by_name and by_object.name == "worker.tasks.io_sleep" and by_object.args == [0.5]


def test_plain_function_goes_through_the_runner_with_tuples_tagged() -> None:
    call = BUILDER.build(functions.square, ((1, 2),), {"x": (3,)})
    assert call.name == RUNNER_TASK
    assert call.args[0] == "worker.functions:square"
    assert call.args[1] == [{"__type__": "tuple", "__value__": [1, 2]}]
    assert call.args[2] == {"x": {"__type__": "tuple", "__value__": [3]}}


def test_builtins_resolve_to_their_own_names() -> None:
    assert function_target(pow) == "builtins:pow"
    assert function_target(functions.spin) == "worker.functions:spin"


@pytest.mark.parametrize("fn", [lambda: None, threading.Event().is_set])
def test_functions_a_worker_cannot_find_by_name(fn: object) -> None:
    with pytest.raises(TypeError):
        function_target(fn)  # type: ignore[arg-type]


def test_unknown_task_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownTaskError, match=r"unknown task 'nope'; known tasks: .*worker\.tasks\.noop"):
        BUILDER.build("nope", (), {})


def test_allowlist_is_checked_before_sending() -> None:
    import os

    with pytest.raises(NotAllowedError, match=r"posix\.getcwd is not in the worker allowlist"):  # its real module
        BUILDER.build(os.getcwd, (), {})
