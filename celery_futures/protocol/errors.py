"""Exception classes that cross the wire: raised on a worker, rebuilt with their type by the client.

The client imports this module itself, so these classes can be rebuilt by name (``celery_futures/client/
errors.py``) like builtins; nothing is ever imported because a message said so.
"""

from __future__ import annotations


class TaskInterruptedError(Exception):
    """A running task was stopped on request (``future.interrupt()``) before it finished."""


class NotAllowedError(PermissionError):
    """The generic runner refused a function that the app's allowlist does not admit."""
