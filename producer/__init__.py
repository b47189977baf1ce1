"""A ``concurrent.futures`` Executor over Celery whose futures tell the truth."""

from celery_futures import CeleryExecutor, CeleryFuture
from celery_futures.client.errors import (
    PayloadTooLargeError,
    RedisUnavailableError,
    RemoteError,
    SendError,
    TaskInterruptedError,
    UnknownTaskError,
    WorkerGoneError,
)
from celery_futures.protocol.pools import Interrupt

__all__ = [
    "CeleryExecutor",
    "CeleryFuture",
    "Interrupt",
    "PayloadTooLargeError",
    "RedisUnavailableError",
    "RemoteError",
    "SendError",
    "TaskInterruptedError",
    "UnknownTaskError",
    "WorkerGoneError",
]
