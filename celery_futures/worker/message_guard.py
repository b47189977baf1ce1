"""Reject malformed or oversized broker messages before kombu or Celery act on them.

Anyone who can write to Redis can ``LPUSH`` anything onto a worker's queue. Celery 5.7 already refuses much
of it with a log line and keeps serving (each case is checked against a real worker of every pool in
``tests/integration/test_hostile_messages.py``): pickle, or any content type outside ``accept_content``
(``on_invalid_task``: "Refusing to deserialize untrusted content"), an unknown task name
(``on_unknown_task``), a message with no headers (``on_unknown_message``), an unparsable ETA. What it did
not survive, found by pushing mutated copies of a real message at a real worker, and why this module exists:

- kombu's Redis transport parses the envelope in its ``BRPOP`` read without error handling (its pub/sub read,
  ``_receive_one``, logs and drops the same error). A message that is not JSON stopped the whole worker:
  "Unrecoverable error: JSONDecodeError". So did an envelope that is a JSON array, a body that is not base64
  (kombu decodes it while building its ``Message``), and, in Celery's consumer, a task message whose
  ``timelimit`` is not a pair, whose ``stamped_headers`` is not a list, whose ``eta`` or ``expires`` is an
  empty string, whose ``content-type`` is missing, whose body is empty or not ``[args, kwargs, embed]``, and a
  protocol 1 message (task fields in the body) with most of those faults or an ``id`` that is not a string.
  On the solo pool, which runs tasks in the worker's own loop, so did a malformed callback or errback
  signature. A ``shadow`` name that is an object made a prefork worker stop taking tasks without a word.
- An envelope without ``properties``, ``delivery_tag`` or ``delivery_info`` (exchange and routing key), or a
  task message without an ``id`` header, raised ``KeyError`` in the consumer, which Celery took for a lost
  connection: it dropped the connection and reconnected, restoring the unacknowledged messages.
- Nothing bounds a message's size: a 32 MiB body was decoded and run like any other task.

So every message is checked against the shape kombu's envelope and Celery's task protocol 2 document (only
the fields shown above to do harm are type-checked, so messages from other Celery versions still pass),
protocol 1 task messages are refused (Celery has sent protocol 2 since 4.0, and its protocol 1 path crashed
on most faults tried), and no message may exceed the limit in ``broker_transport_options['max_message_bytes']``.
A message is taken for protocol 1 when it has no task header and its JSON body is an object with a ``task`` key, which
none of Celery's events or control messages has. A rejected message is logged and dropped: it has been
popped from its list and was never reserved or acknowledged, so it is gone and nothing else is touched.
The size is checked after kombu has read and parsed the message (that part of its read loop is not ours to
change), so the limit keeps a huge message from being decoded again, logged, handed to a pool and run, not
from being read once.

The guard is wired the documented way: Celery's ``broker_transport`` names this module's kombu Redis
``Transport`` subclass, or its Sentinel one for a ``sentinel://`` broker (an explicit transport class; the
URL's scheme, password, TLS query parameters and the transport options work as before). It overrides two
methods: the ``BRPOP`` read, to drop what is not JSON as kombu's pub/sub read already does, and ``_deliver``,
to check a decoded envelope before kombu builds its ``Message``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from queue import Empty
from typing import Any, Final

from kombu.exceptions import DecodeError
from kombu.serialization import loads as kombu_loads
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from celery_futures.protocol.settings import DEFAULT_MAX_MESSAGE_BYTES, MAX_BYTES_OPTION
from celery_futures.worker.channel_close import DetachableChannel
from celery_futures.worker.receipt import HoldingQoS

logger = logging.getLogger(__name__)

TRANSPORT: Final = "celery_futures.worker.message_guard:GuardedTransport"
"""The value of Celery's ``broker_transport`` that installs this guard."""
SENTINEL_TRANSPORT: Final = "celery_futures.worker.message_guard:GuardedSentinelTransport"
"""The same guard on kombu's Sentinel transport, for a ``sentinel://`` broker."""
JSON: Final = "application/json"
PREVIEW_CHARS: Final = 120

Check = Callable[[Any], bool]
Field = tuple[str, Check, str]
"""A field's name, the check its value must pass (a missing field is None), and what the check wants."""


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def is_object(value: Any) -> bool:
    return isinstance(value, dict)


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def is_list(value: Any) -> bool:
    return isinstance(value, list)


def is_limit(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def is_time_limits(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(is_limit(item) for item in value)


def is_list_of_text(value: Any) -> bool:
    return isinstance(value, list) and all(is_text(item) for item in value)


def is_route(value: Any) -> bool:
    return is_object(value) and is_text(value.get("exchange")) and is_text(value.get("routing_key"))


def is_signature(value: Any) -> bool:
    """A serialized Celery ``Signature``: what the worker calls after, or instead of, the task."""
    return is_object(value) and not field_problem("", value, SIGNATURE)


def is_list_of_signatures(value: Any) -> bool:
    return isinstance(value, list) and all(is_signature(item) for item in value)


def is_encoding(value: Any) -> bool:
    return isinstance(value, str) and value.lower() in ("base64", "utf-8")


ENVELOPE: Final[tuple[Field, ...]] = (
    ("properties", is_object, "an object"),
    ("headers", optional(is_object), "an object"),
    ("body", optional(is_text), "a string"),
    ("content-type", is_name, "a non-empty string"),
    ("content-encoding", optional(is_text), "a string"),
)
PROPERTIES: Final[tuple[Field, ...]] = (
    ("delivery_tag", is_name, "a non-empty string"),
    ("delivery_info", is_route, "an object with string exchange and routing_key"),
    ("body_encoding", optional(is_encoding), "base64 or utf-8"),
)
TASK_HEADERS: Final[tuple[Field, ...]] = (
    ("id", is_name, "a non-empty string"),
    ("task", is_name, "a non-empty string"),
    ("shadow", optional(is_name), "a non-empty string"),
    ("eta", optional(is_name), "an ISO 8601 string"),
    ("expires", optional(is_name), "an ISO 8601 string"),
    ("timelimit", optional(is_time_limits), "a pair of numbers or nulls"),
    ("stamped_headers", optional(is_list_of_text), "a list of strings"),
)

SIGNATURE: Final[tuple[Field, ...]] = (
    ("task", is_name, "a non-empty string"),
    ("args", is_list, "a list"),
    ("kwargs", is_object, "an object"),
    ("options", is_object, "an object"),
    ("subtask_type", optional(is_text), "a string"),
)
EMBED: Final[tuple[Field, ...]] = (
    # Run after the task by the pool; in the solo pool that is the worker's own loop, which a malformed
    # signature stopped ("Unrecoverable error").
    ("callbacks", optional(is_list_of_signatures), "a list of signatures"),
    ("errbacks", optional(is_list_of_signatures), "a list of signatures"),
    ("chain", optional(is_list_of_signatures), "a list of signatures"),
    ("chord", optional(is_signature), "a signature"),
)


def field_problem(where: str, values: Mapping[str, Any], fields: tuple[Field, ...]) -> str | None:
    for name, check, wanted in fields:
        if not check(values.get(name)):
            found = "missing" if name not in values else f"a {type(values[name]).__name__}"
            return f"{where}{name} must be {wanted}, found {found}"
    return None


def message_size(envelope: Mapping[str, Any]) -> int:
    """About the size the message has in Redis: its base64 body plus everything else as JSON."""
    body = envelope.get("body") or ""
    return len(body) + len(dumps({key: value for key, value in envelope.items() if key != "body"}))


def raw_body(envelope: Mapping[str, Any]) -> bytes:
    """The body as kombu will hand it to Celery; raises ``ValueError`` if it is not valid base64."""
    body = envelope.get("body") or ""
    if (envelope["properties"].get("body_encoding") or "").lower() == "base64":
        return base64.b64decode(body)  # exactly what kombu's Base64 codec does
    return body.encode()


def task_call_problem(payload: Any) -> str | None:
    """Protocol 2's body is ``[args, kwargs, embed]``."""
    if not (isinstance(payload, list) and len(payload) == 3 and isinstance(payload[0], list)
            and isinstance(payload[1], dict) and optional(is_object)(payload[2])):
        return "body must be [args, kwargs, embed] (task protocol 2)"
    return field_problem("body embed ", payload[2] or {}, EMBED)


def body_problem(envelope: Mapping[str, Any], is_task: bool) -> str | None:
    """A body kombu cannot decode, or a JSON one that is neither a task call nor anything but protocol 1."""
    try:
        data = raw_body(envelope)
    except (binascii.Error, ValueError) as exc:
        return f"body is not valid base64 ({exc})"
    if envelope["content-type"] != JSON:
        return None  # other content types are Celery's to refuse (accept_content: JSON only)
    try:
        payload = kombu_loads(data, JSON, envelope.get("content-encoding") or "utf-8", accept={JSON}) if data else None
    except DecodeError as exc:
        return f"body is not valid JSON ({exc})"
    if is_task:
        return task_call_problem(payload)
    if isinstance(payload, dict) and "task" in payload:
        return "task protocol 1 is refused (the task is named in the body, not the headers)"
    return None


def envelope_problem(envelope: Any, max_bytes: int) -> str | None:
    """Why ``envelope`` (a decoded Redis queue item) must be rejected, or None if kombu and Celery can take it.

    The shape first, then the size (before the body is decoded), then the body.
    """
    if not isinstance(envelope, dict):
        return f"the envelope must be a JSON object, found a {type(envelope).__name__}"
    problem = field_problem("", envelope, ENVELOPE)
    if problem is not None:
        return problem
    problem = field_problem("properties.", envelope["properties"], PROPERTIES)
    is_task = "task" in (envelope.get("headers") or {})
    if problem is None and is_task:
        problem = field_problem("task header ", envelope["headers"], TASK_HEADERS)
    if problem is None and (size := message_size(envelope)) > max_bytes:
        problem = f"it is {size} bytes, more than the limit of {max_bytes} ({MAX_BYTES_OPTION})"
    return problem or body_problem(envelope, is_task)


def describe(envelope: Any) -> str:
    """Which task a rejected message claimed to be, for the log line (never its body)."""
    headers = envelope.get("headers") if isinstance(envelope, dict) else None
    if not isinstance(headers, dict) or "task" not in headers:
        return "not a task message"
    return f"task {str(headers['task'])[:PREVIEW_CHARS]!r}, id {str(headers.get('id'))[:PREVIEW_CHARS]!r}"


class GuardedChannel(DetachableChannel):
    """kombu's Redis channel, except that a ``BRPOP`` reply that is not JSON is dropped, not fatal. Its QoS
    writes a received task's held mark in kombu's own receipt pipeline (``celery_futures/worker/receipt.py``);
    it can be closed after its transport was detached (``celery_futures/worker/channel_close.py``)."""

    QoS = HoldingQoS

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]  # not in the stubs
        except (json.JSONDecodeError, RecursionError) as exc:  # kombu's loads() of the popped item
            logger.error("rejected a message that is not JSON kombu can parse (%s); it was discarded. It began: %r",
                         exc, getattr(exc, "doc", "")[:PREVIEW_CHARS])
            raise Empty() from None  # what kombu's pub/sub read does with the same error


class GuardedTransport(kombu_redis.Transport):
    """kombu's Redis transport with every incoming message checked by :func:`envelope_problem` first."""

    Channel = GuardedChannel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        options = client.transport_options or {}
        self.max_message_bytes = int(options.get(MAX_BYTES_OPTION, DEFAULT_MAX_MESSAGE_BYTES))

    def _deliver(self, message: Any, queue: str | None) -> None:
        try:
            problem = envelope_problem(message, self.max_message_bytes)
        except RecursionError:
            problem = "it is nested too deeply"
        if problem is not None:
            logger.error("rejected a message from queue %r (%s): %s; it was discarded",
                         queue, describe(message), problem)
            return
        super()._deliver(message, queue)


class GuardedSentinelChannel(GuardedChannel, kombu_redis.SentinelChannel):
    """The guarded read on kombu's Sentinel channel, which finds the current master itself."""


class GuardedSentinelTransport(GuardedTransport, kombu_redis.SentinelTransport):
    """kombu's Sentinel transport (``sentinel://``) with the same check as :class:`GuardedTransport`."""

    Channel = GuardedSentinelChannel
