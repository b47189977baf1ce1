"""A kombu ``Connection`` that keeps the guarded transport when it fails over to another broker URL.

A broker URL with alternates (``redis://a;redis://b``, or the list of Sentinels of a ``sentinel://`` URL) makes
kombu switch to the next one when a connection fails (``Connection.switch``), and that switch takes the
transport from the new URL's scheme, "overriding any transport given at construction time" (kombu's own
comment). Celery's ``broker_transport``, the message guard (``celery_futures/worker/message_guard.py``),
and with it the held mark in the receipt pipeline (``celery_futures/worker/receipt.py``), were silently gone
after the first Sentinel failover: found by the failover tests, where every task received afterwards started
without its held mark. This subclass keeps a guarded transport it was made with; any other is left to
kombu. ``install(app)`` sets it as the app's connection class (``app.amqp.Connection``, the one Celery
builds every broker connection with).
"""

from __future__ import annotations

from typing import Any

from kombu import Connection
from kombu.utils.url import parse_url

from celery_futures.worker.message_guard import SENTINEL_TRANSPORT, TRANSPORT, GuardedTransport

GUARDED_NAMES = frozenset({TRANSPORT, SENTINEL_TRANSPORT})


def is_guarded(transport: Any) -> bool:
    """Whether ``transport`` (a class or its ``module:Class`` name) is one of the guarded ones."""
    if isinstance(transport, str):
        return transport in GUARDED_NAMES
    return isinstance(transport, type) and issubclass(transport, GuardedTransport)


class GuardedFailoverConnection(Connection):
    """kombu's ``Connection``, except that a switch to an alternate URL keeps a guarded transport."""

    def switch(self, conn_str: str) -> None:
        """kombu's ``switch`` (close, then take the new URL's parameters), without the URL's transport when
        this connection was made with a guarded one."""
        initial: dict[str, Any] = self._initial_params  # type: ignore[attr-defined]  # set by kombu's __init__
        kept = initial.get("transport")
        if not is_guarded(kept):
            super().switch(conn_str)
            return
        self.close()
        if self.declared_entities is not None:
            self.declared_entities.clear()
        self._closed = False
        params = parse_url(conn_str) if "://" in conn_str else {"hostname": conn_str}
        params.pop("transport", None)  # the scheme names kombu's own transport; ours is the guarded twin
        self._init_params(**dict(initial, **params))
