"""The Celery settings the protocol relies on: applied to an app by ``install(app)``, checked at start.

Required (a different value the app sets is an error, raised when a worker or a client starts):

* **JSON only** (``task_serializer``, ``result_serializer``, ``event_serializer``, ``accept_content``,
  ``result_accept_content``): the codec is kombu's JSON with its tuple tag, and pickle would let anyone who
  can write to Redis run code on workers and clients.
* **``result_backend_always_retry``**: a result that cannot be stored because Redis is restarting must be
  retried, not dropped; a dropped result would leave its future running for ever.
* **Redis** as broker and result backend: claims live beside the results, and the client listens to the
  backend's pub/sub channels and looks for lost messages in the broker's lists.

Recommended (set only where the app has not set the key itself):

* ``result_backend_thread_safe``: without it every gevent greenlet opens its own Redis connection (gevent
  runs 2.5x slower, measured here: 217 against 545 no-op tasks/s); ``result_backend_max_retries`` 40 (about
  five minutes); ``redis_socket_connect_timeout`` 5 s.
* ``broker_transport_options``: a 5 s ``socket_connect_timeout`` (this and the backend's: kombu and Celery set
  none, and a connect to a Redis whose address vanished, a failed-over master's container, waited 38 s on
  the kernel here, inside a claim, a checkpoint or the worker's event loop); a 30 s ``visibility_timeout``
  and a sweep every 5 s, kombu's being 1 hour and 100 s: a message a dead worker had fetched but not started
  goes back on the queue within about 35 s (a live worker's message put back early is harmless: the claim
  lets one copy run); and the message size limit of the guard.
* ``broker_transport``: the guarded Redis transport (``celery_futures/worker/message_guard.py``) when the
  broker is ``redis://`` or ``rediss://``, its Sentinel twin for ``sentinel://``, and the app names no
  transport of its own.
"""

from __future__ import annotations

from typing import Any, Final

from celery_futures.protocol.requirements import REQUIRED, broker_scheme
from celery_futures.protocol.settings import DEFAULT_MAX_MESSAGE_BYTES, MAX_BYTES_OPTION, REDIS_SCHEMES, SENTINEL_SCHEME
from celery_futures.worker.message_guard import SENTINEL_TRANSPORT, TRANSPORT

CONNECT_TIMEOUT_SECONDS: Final = 5.0
RECOMMENDED: Final[dict[str, Any]] = {"result_backend_thread_safe": True, "result_backend_max_retries": 40,
                                      "redis_socket_connect_timeout": CONNECT_TIMEOUT_SECONDS}
TRANSPORT_DEFAULTS: Final[dict[str, Any]] = {
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "visibility_timeout": 30,
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    MAX_BYTES_OPTION: DEFAULT_MAX_MESSAGE_BYTES,
}


def apply_protocol_settings(conf: Any) -> None:
    """Set each required and recommended value the app has not set itself (conflicts are left for
    ``celery_futures.protocol.requirements.check_protocol_settings`` to name). Runs on every (re)load of the
    app's configuration."""
    for key, value in {**REQUIRED, **RECOMMENDED}.items():
        if not conf.value_set_for(key):
            conf[key] = value
    conf.broker_transport_options = {**TRANSPORT_DEFAULTS, **(conf.broker_transport_options or {})}
    guard = {**dict.fromkeys(REDIS_SCHEMES, TRANSPORT), SENTINEL_SCHEME: SENTINEL_TRANSPORT}.get(broker_scheme(conf))
    if not conf.value_set_for("broker_transport") and guard is not None:
        conf.broker_transport = guard
