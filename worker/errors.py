"""Our demo's own exception type, raised on a worker and rebuilt with its type by a producer that imports it."""

from __future__ import annotations


class DemoError(Exception):
    """Raised by the failing demo tasks, to show that custom types survive the trip."""
