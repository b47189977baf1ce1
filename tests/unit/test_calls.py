"""What submit() accepts, refuses, and how it names the reason, without sending anything."""

from __future__ import annotations

import threading

import pytest
from celery import Celery

from celery_futures import LostPolicy, NotInstalledError
from celery_futures.client.calls import CallBuilder, function_target
from celery_futures.client.errors import UnknownTaskError
from celery_futures.protocol.allowlist import Allowlist, NotAllowedError
from celery_futures.protocol.installation import allowlist_of
from celery_futures.protocol.keys import RUNNER_TASK
from worker import functions
from worker.app import app as demo_app
from worker.tasks import demo as tasks
from worker.tasks import ledger

BUILDER = CallBuilder(demo_app, allowlist_of(demo_app))


def test_the_apps_tasks_are_known_and_celery_builtins_and_the_runner_are_not_listed() -> None:
    names = BUILDER.names()
    assert {"worker.tasks.demo.noop", "worker.tasks.demo.gate"} <= set(names)
    assert RUNNER_TASK not in names and not any(name.startswith("celery.") for name in names)


def test_task_object_and_task_name_give_the_same_call() -> None:
    by_object = BUILDER.build(tasks.io_sleep, (0.5,), {})
    by_name = BUILDER.build("worker.tasks.demo.io_sleep", (0.5,), {})
    assert by_object == by_name and by_object.name == "worker.tasks.demo.io_sleep" and by_object.args == [0.5]


def test_the_tasks_lost_policy_travels_with_the_call() -> None:
    assert BUILDER.build(ledger.ledger_rerun, ("run", "token"), {}).policy is LostPolicy.RERUN
    assert BUILDER.build("worker.tasks.ledger.ledger_once", ("run", "token"), {}).policy is LostPolicy.FAIL
    assert BUILDER.build(pow, (2, 3), {}).policy is LostPolicy.FAIL


def test_task_names_given_as_data_need_no_app() -> None:
    builder = CallBuilder(None, Allowlist.parse(None), known={"billing.charge": LostPolicy.RERUN})
    assert builder.build("billing.charge", (1,), {}).policy is LostPolicy.RERUN
    with pytest.raises(UnknownTaskError, match=r"unknown task 'billing\.refund'; known tasks: billing\.charge"):
        builder.build("billing.refund", (), {})


def test_a_task_of_an_app_without_the_extension_is_refused_with_the_fix() -> None:
    plain = Celery("plain", set_as_current=False)

    @plain.task(shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    builder = CallBuilder(plain, Allowlist.parse(None))
    expected = r"app 'plain', which did not install celery_futures: call celery_futures\.install\(app\)"
    with pytest.raises(NotInstalledError, match=expected):
        builder.build(add, (1, 2), {})
    with pytest.raises(NotInstalledError, match=expected):
        builder.build(add.name, (1, 2), {})


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
    with pytest.raises(UnknownTaskError, match=r"unknown task 'nope'; known tasks: .*worker\.tasks\.demo\.noop"):
        BUILDER.build("nope", (), {})


def test_allowlist_is_checked_before_sending() -> None:
    import os

    with pytest.raises(NotAllowedError, match=r"posix\.getcwd is not in the worker allowlist"):  # its real module
        BUILDER.build(os.getcwd, (), {})
