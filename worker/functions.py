"""Plain functions (not Celery tasks) that the default allowlist admits, for ``executor.submit(fn, ...)``.

They show that the executor runs ordinary importable functions on the cluster through the generic runner,
the way ``ThreadPoolExecutor`` runs them locally.
"""

from __future__ import annotations

import json
import time


def sleep_tenths(n: float) -> float:
    """The textbook ``task(n)``: sleep n/10 seconds and return n/10."""
    time.sleep(n / 10)
    return n / 10


def square(x: float) -> float:
    return x * x


def spin(n: int) -> int:
    """Pure-Python CPU work: holds the GIL for the whole loop."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def parse_json(text: str) -> object:
    """``json.loads``: its JSONDecodeError cannot be rebuilt from the message alone, so it arrives as
    ``RemoteError`` naming the type (the producer never guesses a constructor)."""
    return json.loads(text)


def unique(items: list[object]) -> set[object]:
    """A set, which JSON cannot carry: the runner fails it with a TypeError that says so."""
    return set(items)


def echo(*args: object, **kwargs: object) -> tuple[tuple[object, ...], dict[str, object]]:
    """Exactly what it was given, as ``(args, kwargs)``: shows which values survive the trip there and back."""
    return args, kwargs
