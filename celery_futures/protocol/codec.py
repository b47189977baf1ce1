"""What crosses the JSON wire: exactly the values that come back unchanged, with tuples tagged; nothing else.

Arguments going out and results coming back are JSON (kombu's). Plain JSON changes things silently: ``(0, 1)``
arrives as ``[0, 1]``, ``{1: "a"}`` as ``{"1": "a"}``, an ``IntEnum`` as a plain ``int``, ``nan`` as a
token other JSON parsers refuse, and a dict shaped like kombu's own type tag (``{"__type__": ...,
"__value__": ...}``) decodes as something else. So :func:`to_wire` walks a value once and either returns its
wire form or raises ``TypeError`` naming where inside it the problem is and what the value is. It admits:

* ``None``, ``bool``, ``int`` (up to Python's int-to-text limit), finite ``float``, ``str`` (Unicode text:
  no surrogate code points, which JSON escapes and a decoder may join), exactly those types, not subclasses
  (they would arrive as their base type);
* ``list``, ``tuple`` and ``dict`` with ``str`` keys other than ``"__type__"`` (kombu's tag key), of
  admitted values, nested at most :data:`MAX_DEPTH` deep (which also refuses a value that contains itself).

Tuples become kombu's tagged form ``{"__type__": "tuple", "__value__": [...]}``, which kombu's JSON decoder
turns back into a tuple (we register the type; the encoder never asks about tuples, it writes them as
arrays). Decoding can only ever build a tuple, so this stays as safe as plain JSON. The worker and the
producer both import this module, so arguments and results follow one rule.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, Final

from kombu.utils.json import register_type

TUPLE_MARKER: Final = "tuple"
TAG_KEY: Final = "__type__"
MAX_DEPTH: Final = 64
"""Containers inside containers; far below what JSON decoders and Python's recursion limit allow."""
ADMITTED: Final = "None, bool, int, finite float, str, and lists, tuples and dicts with str keys of these"
SHOWN_CHARS: Final = 40
SURROGATE: Final = re.compile(r"[\ud800-\udfff]")

register_type(tuple, TUPLE_MARKER, list, tuple)


class Refused(Exception):  # noqa: N818 - internal signal, turned into a TypeError by to_wire
    """A value the wire cannot carry unchanged; ``path`` is filled in as it propagates outwards."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(problem)
        self.kind = kind
        self.problem = problem
        self.path: list[str] = []


def to_wire(value: Any, name: str, owner: str) -> Any:
    """``value`` as it goes on the wire (tuples tagged), or ``TypeError`` saying where and why not.

    ``name`` and ``owner`` make the message: ``argument 0[2]['k'] of math:fsum (float) is nan, ...``.
    """
    try:
        return encode(value, MAX_DEPTH)
    except Refused as refused:
        path = "".join(reversed(refused.path))
        raise TypeError(f"{name}{path} of {owner} ({refused.kind}) {refused.problem}") from None


def encode(value: Any, depth: int) -> Any:
    """The wire form of ``value``; ``depth`` is how many more containers may be entered."""
    kind = type(value)
    scalar = SCALARS.get(kind)
    if scalar is not None:
        return scalar(value)
    container = CONTAINERS.get(kind)
    if container is None:
        raise refusal(value)
    if depth == 0:
        raise Refused(kind.__name__, f"is nested more than {MAX_DEPTH} containers deep (or contains itself)")
    return container(value, depth - 1)


def encode_items(values: Iterable[Any], depth: int) -> list[Any]:
    encoded = []
    for index, item in enumerate(values):
        try:
            encoded.append(encode(item, depth))
        except Refused as refused:
            refused.path.append(f"[{index}]")
            raise
    return encoded


def encode_tuple(values: tuple[Any, ...], depth: int) -> dict[str, Any]:
    return {TAG_KEY: TUPLE_MARKER, "__value__": encode_items(values, depth)}


def encode_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    encoded = {}
    for key, item in value.items():
        if type(key) is not str:
            raise Refused("dict", f"has the key {shown(key)} of type {type(key).__name__}; JSON keys are strings, "
                                  "so it would arrive as a str")
        checked_str(key)
        if key == TAG_KEY:
            raise Refused("dict", f"has the key {TAG_KEY!r}, which kombu reserves for its type tags, so the dict "
                                  "would arrive as something else")
        try:
            encoded[key] = encode(item, depth)
        except Refused as refused:
            refused.path.append(f"[{shown(key)}]")
            raise
    return encoded


def checked_str(value: str) -> str:
    """Surrogate code points are not text: JSON escapes them, and a decoder joins a pair into one character."""
    if not value.isascii() and (found := SURROGATE.search(value)) is not None:
        raise Refused("str", f"has the surrogate {found.group()!r} at index {found.start()}, which is not Unicode "
                             "text; JSON would not bring it back unchanged")
    return value


def checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise Refused("float", f"is {value!r}, which is not JSON; only finite floats can be sent")
    return value


def checked_int(value: int) -> int:
    """Python refuses to write (and read) ints longer than ``sys.get_int_max_str_digits()`` digits."""
    limit = sys.get_int_max_str_digits()
    if limit and value.bit_length() > 3 * limit:  # below that, fewer than `limit` digits: skip the costly check
        try:
            str(value)
        except ValueError:
            raise Refused("int", f"has more than {limit} digits, more than Python converts to text") from None
    return value


def unchanged(value: Any) -> Any:
    return value


SCALARS: Final[dict[type, Callable[[Any], Any]]] = {
    str: checked_str, bool: unchanged, type(None): unchanged, int: checked_int, float: checked_float,
}
"""Exact types only: a subclass is looked up by its own type, misses, and is refused."""
CONTAINERS: Final[dict[type, Callable[[Any, int], Any]]] = {
    list: encode_items, tuple: encode_tuple, dict: encode_dict,
}


def refusal(value: Any) -> Refused:
    """Why ``value``'s type cannot go: a subclass of an admitted type would lose its type, the rest is not JSON."""
    kind = type(value)
    for base in (bool, int, float, str, list, tuple, dict):
        if isinstance(value, base):
            return Refused(f"{kind.__name__}, a subclass of {base.__name__}",
                           f"would arrive as a plain {base.__name__}; send a plain {base.__name__} if that is meant")
    return Refused(kind.__name__, f"is not JSON-serializable: only {ADMITTED} can be sent unchanged")


def shown(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."
