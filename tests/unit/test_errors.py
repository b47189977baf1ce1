"""Remote exceptions are rebuilt by type only from modules already loaded; anything else is named."""

from __future__ import annotations

import json

from celery_futures.client.errors import RemoteError, RemoteTraceback, rebuild_exception
from worker.errors import DemoError


def test_builtin_type_and_args_survive() -> None:
    exc = rebuild_exception({"exc_type": "KeyError", "exc_module": "builtins", "exc_message": ["k"]})
    assert type(exc) is KeyError and exc.args == ("k",)


def test_our_own_type_survives() -> None:
    exc = rebuild_exception({"exc_type": "DemoError", "exc_module": "worker.errors", "exc_message": ["ours"]})
    assert type(exc) is DemoError and str(exc) == "ours"


def test_traceback_text_becomes_the_cause() -> None:
    exc = rebuild_exception({"exc_type": "ValueError", "exc_module": "builtins", "exc_message": ["v"]},
                            "Traceback (most recent call last):\n  File \"w.py\"\nValueError: v\n")
    assert isinstance(exc.__cause__, RemoteTraceback)
    assert 'File "w.py"' in str(exc.__cause__)


def test_a_module_that_is_not_loaded_is_never_imported() -> None:
    exc = rebuild_exception({"exc_type": "Boom", "exc_module": "surely_not_a_loaded_module", "exc_message": ["x"]})
    assert isinstance(exc, RemoteError)
    assert exc.remote_type == "surely_not_a_loaded_module.Boom" and exc.remote_message == "x"


def test_something_that_is_not_an_exception_is_refused() -> None:
    exc = rebuild_exception({"exc_type": "dumps", "exc_module": "json", "exc_message": ["{}"]})
    assert isinstance(exc, RemoteError) and exc.remote_type == "json.dumps"
    assert json.dumps({}) == "{}"  # and nothing was called on the way


def test_base_exceptions_that_would_stop_the_producer_are_named_not_raised() -> None:
    for name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
        exc = rebuild_exception({"exc_type": name, "exc_module": "builtins", "exc_message": []})
        assert isinstance(exc, RemoteError) and exc.remote_type == name


def test_a_constructor_the_message_cannot_satisfy_is_named() -> None:
    exc = rebuild_exception({"exc_type": "UnicodeDecodeError", "exc_module": "builtins", "exc_message": ["x"]})
    assert isinstance(exc, RemoteError) and exc.remote_type == "UnicodeDecodeError"


def test_garbage_is_a_remote_error() -> None:
    assert isinstance(rebuild_exception("not a dict"), RemoteError)
