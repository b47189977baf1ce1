"""The generic runner (``celery_futures.call``): call an allowlisted plain function by name, or refuse why.

``executor.submit(pow, 2, 10)`` sends ``celery_futures.call("builtins:pow", [2, 10], {})``; ``install(app)``
registers this task on the app, and the app's ``celery_futures_allowlist`` says what it may call.

The allowlist is a security boundary, so matching the *requested* string is not enough: attribute lookups
can walk from an admitted module to anything it imports (``worker.functions:json.codecs.builtins.exec``).
So a target is refused unless every part of its name is public, the allowlist admits it before anything is
imported, and the object found is a function defined under exactly that name (its own ``__module__`` and
``__qualname__``): nothing re-exported, nothing reached through another object. The one exception is a
module-level stdlib function that gevent monkey-patched on a gevent worker (``time:sleep``).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from functools import reduce
from typing import Any

from celery import Celery

from celery_futures.protocol.allowlist import Allowlist
from celery_futures.protocol.codec import to_wire
from celery_futures.protocol.errors import NotAllowedError
from celery_futures.protocol.keys import RUNNER_TASK
from celery_futures.protocol.settings import ALLOWLIST_SETTING, parse_allowlist


def canonical_name(obj: Any) -> str | None:
    """``module.qualname`` as the object itself states it, or None if it does not."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return None


def patched_by_gevent(module_name: str, parts: list[str]) -> bool:
    """``time.sleep`` on a gevent worker is gevent's, by monkey-patching: the one allowed difference."""
    if len(parts) != 1 or "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_object_patched(module_name, parts[0]))


def split_target(target: str) -> tuple[str, list[str]]:
    """``module:qualname`` into the module and the public attribute path, or NotAllowedError."""
    if not isinstance(target, str):  # a message is input too: anyone who can write to Redis can send any JSON
        raise NotAllowedError(f"the target must be a string module:qualname, not {type(target).__name__}")
    module_name, _, qualname = target.partition(":")
    parts = qualname.split(".")
    names_ok = all(part.isidentifier() for part in module_name.split(".")) and all(
        part.isidentifier() and not part.startswith("_") for part in parts
    )
    if not module_name or not qualname or not names_ok:
        raise NotAllowedError(f"{target!r} is not the public name of a function (module:qualname)")
    return module_name, parts


def checked_arguments(args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """The runner's ``args`` and ``kwargs`` as a message must carry them, or a TypeError saying what came."""
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise TypeError(f"the runner takes a list of arguments and a dict of keyword arguments, "
                        f"not {type(args).__name__} and {type(kwargs).__name__}")
    return args, kwargs


def resolve_allowed(target: str, allowlist: Allowlist) -> Callable[..., Any]:
    """The function ``target`` names, if the allowlist admits it and it really is defined under that name."""
    module_name, parts = split_target(target)
    requested = f"{module_name}.{'.'.join(parts)}"
    allowlist.check(requested)
    found = reduce(getattr, parts, importlib.import_module(module_name))
    actual = canonical_name(found)
    if (actual != requested and not patched_by_gevent(module_name, parts)) or not callable(found):
        raise NotAllowedError(
            f"{target} names {actual or 'an object that is not a function'}, not a function defined there; "
            "only functions called by their own name can run"
        )
    return found


def register_runner(app: Celery) -> None:
    """Register :data:`~celery_futures.protocol.keys.RUNNER_TASK` on ``app`` (on this app only: not shared)."""

    @app.task(name=RUNNER_TASK, shared=False)
    def call(target: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Call the plain function ``module:qualname`` if the app's allowlist admits it.

        The result goes back only if it arrives unchanged (the same rule as arguments, the codec);
        otherwise the task fails with a TypeError that says where in the result the problem is.
        """
        function = resolve_allowed(target, allowlist_setting(app.conf.get(ALLOWLIST_SETTING)))
        args, kwargs = checked_arguments(args, kwargs)
        return to_wire(function(*args, **kwargs), "the result", target)


def allowlist_setting(raw: Any) -> Allowlist:
    """The allowlist a setting's value gives, parsed once per distinct value."""
    return _parsed(tuple(raw) if isinstance(raw, list) else raw)


@functools.lru_cache(maxsize=16)
def _parsed(raw: str | tuple[str, ...] | None) -> Allowlist:
    return parse_allowlist(raw, ALLOWLIST_SETTING)
