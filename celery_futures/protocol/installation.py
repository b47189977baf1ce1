"""Whether a Celery app takes part in the protocol, and what its configuration tells both sides.

``celery_futures.install(app)`` marks the app; the client refuses tasks of an app without the mark, because
its workers would run them without the claim (a cancel could not be exact) and without a heartbeat (a dead
worker could not be noticed). Both sides read the same settings from the app's own configuration, so a
producer and a worker that load the same app module agree on them without being told twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from celery_futures.protocol.allowlist import Allowlist
from celery_futures.protocol.settings import (
    ALLOWLIST_SETTING,
    DEFAULT_RESULT_TTL,
    parse_allowlist,
    parse_result_ttl,
)

MARK: Final = "celery_futures_installed"
"""The attribute ``install(app)`` sets on the app object."""


def mark_installed(app: Any) -> None:
    setattr(app, MARK, True)


def is_installed(app: Any) -> bool:
    return getattr(app, MARK, False) is True


def allowlist_of(app: Any) -> Allowlist:
    """The app's ``celery_futures_allowlist`` (the safe default when unset); a bad pattern names the setting."""
    return parse_allowlist(app.conf.get(ALLOWLIST_SETTING), ALLOWLIST_SETTING)


def result_ttl_of(app: Any) -> int:
    """``result_expires`` in whole seconds (a number or a timedelta): the lifetime of results, claims, flags
    and of a message waiting in a queue, which both sides must agree on."""
    expires = app.conf.result_expires
    if expires is None:  # results that never expire; claims still must, or they would pile up
        return DEFAULT_RESULT_TTL
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
    return parse_result_ttl(int(seconds), "result_expires")
