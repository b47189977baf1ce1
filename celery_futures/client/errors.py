"""Remote exceptions keep their type and message, and carry the worker's traceback as ``__cause__``.

A failure arrives as ``{"exc_type", "exc_module", "exc_message"}`` plus the traceback text. The type is
looked up only among modules this process has *already* imported (builtins, the protocol's errors, the
app's own task modules, Celery's...) and only if it is an ``Exception`` subclass: nothing is ever imported
because the wire said so. Any other type becomes :class:`RemoteError`, which names it. The traceback is attached the way
``concurrent.futures.process._RemoteTraceback`` does it, so it prints under "The above exception was the
direct cause of the following exception".
"""

from __future__ import annotations

import sys
from typing import Any

from billiard.exceptions import WorkerLostError

from celery_futures.protocol.errors import NotAllowedError, TaskInterruptedError

__all__ = [
    "NotAllowedError",
    "NotInstalledError",
    "PayloadTooLargeError",
    "RedisUnavailableError",
    "RemoteError",
    "RemoteTraceback",
    "SendError",
    "TaskInterruptedError",
    "UnknownTaskError",
    "WorkerGoneError",
    "WorkerLostError",
    "rebuild_exception",
]


class RemoteTraceback(Exception):  # noqa: N818 - named after concurrent.futures.process._RemoteTraceback
    """The worker's traceback text; ``str()`` of it is the traceback itself."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class RemoteError(Exception):
    """A remote exception of a type this process does not have loaded; it names that type."""

    def __init__(self, remote_type: str, message: str) -> None:
        super().__init__(f"{remote_type}: {message}")
        self.remote_type = remote_type
        self.remote_message = message


class UnknownTaskError(LookupError):
    """``submit`` got a task name that the executor's app does not have (nor the executor's ``tasks``)."""


class NotInstalledError(TypeError):
    """``submit`` got a task of an app that did not call ``celery_futures.install(app)``: its workers would run
    it without the claim and the heartbeat, so its future could not tell the truth."""


class PayloadTooLargeError(ValueError):
    """``submit`` got arguments whose JSON is larger than ``PRODUCER_MAX_PAYLOAD_BYTES``; nothing was sent."""


class SendError(ConnectionError):
    """The task could not be handed to the broker; it was not run and will not run."""


class RedisUnavailableError(ConnectionError):
    """Redis stayed unreachable past the executor's outage limit, so the task's outcome cannot be known."""


class WorkerGoneError(WorkerLostError, RuntimeError):
    """The worker running (or holding) the task stopped beating: the task's outcome is lost.

    A ``billiard.exceptions.WorkerLostError`` (what Celery records when a prefork child is killed), so one
    ``except WorkerLostError`` covers every way a worker can be lost under a task.
    """


def loaded_exception_class(module: str, qualname: str) -> type[Exception] | None:
    """The class ``module.qualname`` if that module is already imported and it is an Exception type."""
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


def rebuild_exception(info: Any, traceback_text: str | None = None) -> Exception:
    """Turn a stored failure back into an exception of its own type, with the remote traceback as cause."""
    if not isinstance(info, dict) or "exc_type" not in info:
        exc: Exception = RemoteError("unknown", repr(info))
    else:
        exc = instantiate(str(info.get("exc_module") or "builtins"), str(info["exc_type"]), info.get("exc_message"))
    if traceback_text:
        exc.__cause__ = RemoteTraceback(f'\n"""\n{traceback_text}"""')
    return exc


def instantiate(module: str, qualname: str, message: Any) -> Exception:
    args = list(message) if isinstance(message, list | tuple) else [message]
    cls = loaded_exception_class(module, qualname)
    if cls is not None:
        try:
            return cls(*args)
        except Exception:
            pass
    name = qualname if module == "builtins" else f"{module}.{qualname}"
    return RemoteError(name, " ".join(str(arg) for arg in args))
