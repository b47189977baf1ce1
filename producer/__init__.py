"""A ``concurrent.futures`` Executor over Celery whose futures tell the truth."""

from producer.errors import (
    PayloadTooLargeError,
    RedisUnavailableError,
    RemoteError,
    SendError,
    TaskInterruptedError,
    UnknownTaskError,
    WorkerGoneError,
)
from producer.executor import CeleryExecutor
from producer.future import CeleryFuture
from worker.pools import Interrupt

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
