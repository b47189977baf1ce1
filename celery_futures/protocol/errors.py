"""Exception classes that cross the wire: raised on a worker, rebuilt with their type by the client.

The client imports this module itself, so these classes can be rebuilt by name (``celery_futures/client/
errors.py``) like builtins; nothing is ever imported because a message said so.
"""

from __future__ import annotations


class TaskInterruptedError(Exception):
    """A running task was stopped on request (``future.interrupt()``) before it finished."""


class NotAllowedError(PermissionError):
    """The generic runner refused a function that the app's allowlist does not admit."""


class RedisDataLostError(ConnectionError):
    """Redis lost its data (restarted without persistence, or flushed) while the task was queued or held:
    its message or its claim is gone, so it was not run, and it will not be; its outcome is this error, never
    a lost worker. Raised by a worker that finds the claim gone, and by a client that finds the message gone."""
