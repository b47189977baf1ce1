"""Turn ``submit(fn, *args, **kwargs)`` into a task message, or refuse it before anything is sent.

``fn`` may be one of our Celery tasks, the name of one, or a plain importable function the workers'
allowlist admits (sent through the generic runner ``worker.tasks.call``). Everything the producer can
check, it checks here: unknown task names, functions that cannot be found by name on a worker (lambdas,
locals, bound methods), functions the allowlist refuses, arguments that would not arrive unchanged
(:mod:`worker.wire`) and arguments over the payload limit. Every refusal is raised before anything is sent.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import Task
from kombu.utils.json import dumps

from producer.errors import PayloadTooLargeError, UnknownTaskError
from producer.settings import DEFAULT_MAX_PAYLOAD_BYTES
from worker import constants as c
from worker.allowlist import Allowlist
from worker.app import app as worker_app
from worker.base_task import ClaimedTask
from worker.wire import TAG_KEY, to_wire

RUNNER_TASK = "worker.tasks.call"
REPR_LIMIT = 200


@dataclass(frozen=True, slots=True)
class TaskCall:
    """A validated call, ready to become a Celery message."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    argsrepr: str
    kwargsrepr: str


def our_task_names() -> frozenset[str]:
    """Names of the tasks that take part in the start/cancel claim; only these can be cancelled exactly.

    The task modules are the app's own ``imports`` list, loaded the way a worker loads them.
    """
    worker_app.loader.import_default_modules()
    return frozenset(name for name, task in worker_app.tasks.items() if isinstance(task, ClaimedTask))


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def wire_arguments(owner: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """``args`` and ``kwargs`` as they go on the wire, or ``TypeError`` naming the argument and the place in it
    that would not arrive unchanged (see :mod:`worker.wire` for what does)."""
    wire_args = [to_wire(value, f"argument {index}", owner) for index, value in enumerate(args)]
    wire_kwargs = {}
    for key, value in kwargs.items():
        if key == TAG_KEY:  # the kwargs dict is itself a JSON object in the message
            raise TypeError(f"keyword argument {key!r} of {owner}: the name is reserved for kombu's type tags")
        wire_kwargs[key] = to_wire(value, f"keyword argument {key!r}", owner)
    return wire_args, wire_kwargs


def check_payload(owner: str, wire_args: list[Any], wire_kwargs: dict[str, Any], limit: int) -> None:
    """Refuse arguments whose JSON is over ``limit`` bytes (ASCII-only JSON, so characters are bytes)."""
    size = len(dumps([wire_args, wire_kwargs]))
    if size > limit:
        raise PayloadTooLargeError(
            f"the arguments of {owner} are {size} bytes as JSON, over the limit of {limit} bytes "
            f"({c.ENV_MAX_PAYLOAD}); send a reference to the data (a key, a path) or raise the limit"
        )


def function_target(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function a worker can import by name, or ``TypeError`` saying why not."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError(f"{fn!r} cannot be sent: only module-level functions can be called by name on a worker")
    if any(part.startswith("_") for part in qualname.split(".")):
        raise TypeError(f"{module}.{qualname} is private: only public functions can be called on a worker")
    if inspect.ismethod(fn) and not inspect.isclass(fn.__self__):
        raise TypeError(f"{fn!r} is a bound method of an object that lives here; send a module-level function")
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not fn and found != fn:
        raise TypeError(f"{module}.{qualname} does not name {fn!r}, so a worker could not find it")
    return f"{module}:{qualname}"


@dataclass(frozen=True)
class CallBuilder:
    """Validates what ``submit`` was given against our tasks and the workers' allowlist."""

    allowlist: Allowlist
    task_names: frozenset[str]
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    def build(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        if isinstance(fn, str):
            return self.task_call(fn, args, kwargs)
        if isinstance(fn, Task):
            return self.task_call(str(fn.name), args, kwargs)
        if callable(fn):
            return self.function_call(fn, args, kwargs)
        raise TypeError(f"fn must be a task, a task name or a function, not {type(fn).__name__}")

    def task_call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        if name == RUNNER_TASK:
            raise TypeError(f"submit the function itself, not {RUNNER_TASK}: the runner is used for you")
        if name not in self.task_names:
            known = ", ".join(sorted(self.task_names))
            raise UnknownTaskError(f"unknown task {name!r}; known tasks: {known}")
        wire_args, wire_kwargs = self.arguments(name, args, kwargs)
        return TaskCall(name, wire_args, wire_kwargs, short_repr(args), short_repr(kwargs))

    def function_call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        target = function_target(fn)
        self.allowlist.check(target.replace(":", "."))
        wire_args, wire_kwargs = self.arguments(target, args, kwargs)
        return TaskCall(
            RUNNER_TASK,
            [target, wire_args, wire_kwargs],
            {},
            short_repr((target, *args)),
            short_repr(kwargs),
        )

    def arguments(self, owner: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The wire form of the arguments, refused unless they arrive unchanged and fit the payload limit."""
        wire_args, wire_kwargs = wire_arguments(owner, args, kwargs)
        check_payload(owner, wire_args, wire_kwargs, self.max_payload_bytes)
        return wire_args, wire_kwargs
