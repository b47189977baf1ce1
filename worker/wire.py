"""Tuples survive the JSON wire: a tagged form that kombu's own JSON decoder turns back into a tuple.

Plain JSON turns ``(0, 1)`` into ``[0, 1]``, so ``divmod`` over the cluster would not equal ``divmod``
locally. kombu already decodes ``{"__type__": marker, "__value__": v}`` through types registered with
``kombu.utils.json.register_type``; we register ``tuple`` and tag tuples ourselves on the way out (the JSON
encoder never asks about tuples, it writes them as arrays). Decoding can only ever build a tuple, so this
stays as safe as plain JSON. Both the worker and the producer import this module.
"""

from __future__ import annotations

from typing import Any, Final

from kombu.utils.json import register_type

TUPLE_MARKER: Final = "tuple"

register_type(tuple, TUPLE_MARKER, list, tuple)


def tag_tuples(value: Any) -> Any:
    """Return ``value`` with every tuple inside it replaced by kombu's tagged form, recursively."""
    if isinstance(value, tuple):
        return {"__type__": TUPLE_MARKER, "__value__": [tag_tuples(item) for item in value]}
    if isinstance(value, list):
        return [tag_tuples(item) for item in value]
    if isinstance(value, dict):
        return {key: tag_tuples(item) for key, item in value.items()}
    return value
