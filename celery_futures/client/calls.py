"""Turn ``submit(fn, *args, **kwargs)`` into a task message, or refuse it before anything is sent.

``fn`` may be a Celery task (of an app that installed the extension), a task's name (one the executor's app
has, or one the executor was told about as data), or a plain importable function the app's allowlist admits
(sent through the generic runner ``celery_futures.call``). Everything the client can check, it checks here:
unknown task names, tasks of apps that did not install the extension, functions that cannot be found by
name on a worker (lambdas, locals, bound methods), functions the allowlist refuses, arguments that would not
arrive unchanged (``celery_futures/protocol/codec.py``) and arguments over the payload limit. Every refusal is
raised before anything is sent. The task's lost policy travels with the call.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, Task
from kombu.utils.json import dumps

from celery_futures.client.errors import NotInstalledError, PayloadTooLargeError, UnknownTaskError
from celery_futures.client.settings import DEFAULT_MAX_PAYLOAD_BYTES, ENV_MAX_PAYLOAD
from celery_futures.protocol.allowlist import Allowlist
from celery_futures.protocol.codec import TAG_KEY, to_wire
from celery_futures.protocol.installation import is_installed
from celery_futures.protocol.keys import RUNNER_TASK
from celery_futures.protocol.policies import LostPolicy, lost_policy_of

REPR_LIMIT = 200
CELERY_BUILTIN = "celery."


@dataclass(frozen=True, slots=True)
class TaskCall:
    """A validated call, ready to become a Celery message."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    argsrepr: str
    kwargsrepr: str
    policy: LostPolicy = LostPolicy.FAIL
    """What happens if its worker dies under it (the task's declared ``lost_policy``)."""


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def wire_arguments(owner: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """``args`` and ``kwargs`` as they go on the wire, or ``TypeError`` naming the argument and the place in it
    that would not arrive unchanged (see ``celery_futures/protocol/codec.py`` for what does)."""
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
            f"({ENV_MAX_PAYLOAD}); send a reference to the data (a key, a path) or raise the limit"
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


@dataclass
class CallBuilder:
    """Validates what ``submit`` was given against the app's tasks, the tasks given as data, and the allowlist."""

    app: Celery | None
    """The app whose registry names are looked up in; None for an executor without an app (Celery adds every
    shared task to every app, so a bare app's registry would claim tasks it knows nothing about)."""
    allowlist: Allowlist
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    known: Mapping[str, LostPolicy] = field(default_factory=dict)
    """Task names the executor was told about (with their policy) instead of importing their modules."""

    def build(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        if isinstance(fn, str):
            return self.task_call(fn, self.policy_of_name(fn), args, kwargs)
        if isinstance(fn, Task):
            return self.task_call(str(fn.name), self.policy_of_task(fn), args, kwargs)
        if callable(fn):
            return self.function_call(fn, args, kwargs)
        raise TypeError(f"fn must be a task, a task name or a function, not {type(fn).__name__}")

    def policy_of_name(self, name: str) -> LostPolicy:
        if name == RUNNER_TASK:
            raise TypeError(f"submit the function itself, not {RUNNER_TASK}: the runner is used for you")
        if name in self.known:
            return self.known[name]
        task = self.registered(name)
        if task is None:
            raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(self.names()) or '(none)'} "
                                   "(pass the app that defines it, CeleryExecutor(app=...), or tasks={name: policy})")
        return self.policy_of_task(task)

    def policy_of_task(self, task: Task) -> LostPolicy:  # type: ignore[type-arg]
        if not is_installed(task.app):
            raise NotInstalledError(f"task {task.name!r} belongs to app {task.app.main!r}, which did not install "
                                    "celery_futures: call celery_futures.install(app) where the app is defined, so "
                                    "its workers claim each task before it runs and beat a heartbeat")
        return lost_policy_of(task)

    def registered(self, name: str) -> Task | None:  # type: ignore[type-arg]
        """The app's task of that name (the executor has imported the app's task modules by now)."""
        if self.app is None:
            return None
        task: Task | None = self.app.tasks.get(name)  # type: ignore[type-arg]
        return task

    def names(self) -> list[str]:
        registered = set(self.app.tasks) if self.app is not None else set()
        found = {name for name in registered if not name.startswith(CELERY_BUILTIN)} | set(self.known)
        return sorted(found - {RUNNER_TASK})

    def task_call(self, name: str, policy: LostPolicy, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        wire_args, wire_kwargs = self.arguments(name, args, kwargs)
        return TaskCall(name, wire_args, wire_kwargs, short_repr(args), short_repr(kwargs), policy)

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
