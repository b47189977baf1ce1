"""Exception classes that cross the wire: raised on a worker, rebuilt with their type by the producer.

The producer imports this module itself, so its classes are the only non-builtin exception types it
rebuilds by name (see ``producer/errors.py``); nothing is imported because a message said so.
"""

from __future__ import annotations


class DemoError(Exception):
    """Our own exception class, raised by the failing demo task to show custom types survive the trip."""


class TaskInterruptedError(Exception):
    """A running task was stopped on request (``future.interrupt()``) before it finished."""


class NotAllowedError(PermissionError):
    """The generic runner refused a function that the worker's allowlist does not admit."""
