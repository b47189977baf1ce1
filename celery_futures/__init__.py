"""Truthful ``concurrent.futures`` for any Celery app.

Three lines::

    import celery_futures
    celery_futures.install(app)                        # where your Celery app is defined (workers and producers)
    executor = celery_futures.CeleryExecutor(app)      # a real concurrent.futures.Executor

Layers: ``protocol`` (what both sides agree on), ``client`` (the executor), ``worker`` (the extension a
worker needs). Names are imported on first use, as ``concurrent.futures`` does: a gevent worker must be able
to import ``celery_futures.protocol`` before it monkey-patches, and nothing here may import ssl or redis then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

_HOMES = {
    "CeleryExecutor": "celery_futures.client.executor",
    "CeleryFuture": "celery_futures.client.future",
    "ClientSettings": "celery_futures.client.settings",
    "NotInstalledError": "celery_futures.client.errors",
    "PayloadTooLargeError": "celery_futures.client.errors",
    "RedisUnavailableError": "celery_futures.client.errors",
    "RemoteError": "celery_futures.client.errors",
    "RemoteTraceback": "celery_futures.client.errors",
    "SendError": "celery_futures.client.errors",
    "UnknownTaskError": "celery_futures.client.errors",
    "WorkerGoneError": "celery_futures.client.errors",
    "WorkerLostError": "celery_futures.client.errors",
    "NotAllowedError": "celery_futures.protocol.errors",
    "RedisDataLostError": "celery_futures.protocol.errors",
    "TaskInterruptedError": "celery_futures.protocol.errors",
    "LostPolicy": "celery_futures.protocol.policies",
    "Interrupt": "celery_futures.protocol.pools",
    "SettingsError": "celery_futures.protocol.settings",
    "checkpoint": "celery_futures.worker.interrupt",
    "install": "celery_futures.worker.install",
}

__all__ = [
    "CeleryExecutor",
    "CeleryFuture",
    "ClientSettings",
    "Interrupt",
    "LostPolicy",
    "NotAllowedError",
    "NotInstalledError",
    "PayloadTooLargeError",
    "RedisDataLostError",
    "RedisUnavailableError",
    "RemoteError",
    "RemoteTraceback",
    "SendError",
    "SettingsError",
    "TaskInterruptedError",
    "UnknownTaskError",
    "WorkerGoneError",
    "WorkerLostError",
    "__version__",
    "checkpoint",
    "install",
]

if TYPE_CHECKING:
    from celery_futures.client.errors import (
        NotInstalledError,
        PayloadTooLargeError,
        RedisUnavailableError,
        RemoteError,
        RemoteTraceback,
        SendError,
        UnknownTaskError,
        WorkerGoneError,
        WorkerLostError,
    )
    from celery_futures.client.executor import CeleryExecutor
    from celery_futures.client.future import CeleryFuture
    from celery_futures.client.settings import ClientSettings
    from celery_futures.protocol.errors import NotAllowedError, RedisDataLostError, TaskInterruptedError
    from celery_futures.protocol.policies import LostPolicy
    from celery_futures.protocol.pools import Interrupt
    from celery_futures.protocol.settings import SettingsError
    from celery_futures.worker.install import install
    from celery_futures.worker.interrupt import checkpoint


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'celery_futures' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
